"""Progress bars (tqdm) that switch themselves off when output is not a terminal."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["bars_enabled", "progress_bar", "say"]


def bars_enabled(quiet: bool) -> bool:
    """Bars only on an interactive terminal and without ``--quiet``."""
    return not quiet and sys.stderr.isatty()


def progress_bar(total: int, desc: str, quiet: bool, leave: bool = True) -> tqdm:
    """A tqdm bar on stderr, disabled by :func:`bars_enabled`."""
    return tqdm(total=total, desc=desc, leave=leave, disable=not bars_enabled(quiet), dynamic_ncols=True)


def say(message: str, quiet: bool) -> None:
    """Print a line (through tqdm, so it does not break a bar) unless quiet."""
    if not quiet:
        tqdm.write(message, file=sys.stdout)
