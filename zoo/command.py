"""The convention of every ``zoo`` command, and the options several commands share (each defined once).

Each stage exposes its commands as :class:`Command` records: name, help texts, an
``add_arguments(parser)`` function and a ``run(args) -> exit status`` function.
:mod:`zoo.cli` gathers them into the ``zoo`` command; a stage can also parse and
run its command alone (``python -m zoo.export.predict``). Standard library only,
so the torch-free prediction command can use it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SPLITS", "Command", "add_data_dir", "add_device", "add_json", "add_split", "add_threads", "require_positive"]

SPLITS = ("test", "val", "train")


@dataclass(frozen=True)
class Command:
    """One command of the ``zoo`` command line.

    Attributes:
        name: the subcommand, e.g. ``'train'``.
        help: one line for ``zoo --help``.
        description: the text of ``zoo NAME --help``.
        add_arguments: adds the command's options to a parser.
        run: carries out the parsed command; returns the exit status.
        epilog: text after the options.
        preformatted: keep the description's and epilog's line breaks.
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str | None = None
    preformatted: bool = False

    def add_to(self, subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """Add this command to the ``zoo`` command's subparsers; returns its parser."""
        formatter = argparse.RawDescriptionHelpFormatter if self.preformatted else argparse.HelpFormatter
        parser = subparsers.add_parser(self.name, help=self.help, description=self.description, epilog=self.epilog,
                                       formatter_class=formatter)
        self.add_arguments(parser)
        return parser


def add_data_dir(parser: argparse.ArgumentParser | argparse._ArgumentGroup, **kwargs: Any) -> None:
    """``--data-dir``: the data root."""
    parser.add_argument("--data-dir", help="data root (default: $ZOO_DATA, else ~/.cache/zoo/data)", **kwargs)


def add_split(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--split``: which split of the dataset (default: test)."""
    parser.add_argument("--split", choices=SPLITS, default="test", help="default: test")


def add_threads(parser: argparse.ArgumentParser | argparse._ArgumentGroup, **kwargs: Any) -> None:
    """``--threads``: CPU threads for torch."""
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)", **kwargs)


def add_device(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: Any = "cpu") -> None:
    """``--device``: where torch runs."""
    parser.add_argument("--device", default=default, help="cpu or cuda (default: cpu)")


def add_json(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "the result") -> None:
    """``--json``: print ``what`` as JSON instead of text."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def require_positive(args: argparse.Namespace, *names: str) -> None:
    """Raise ValueError naming the first of the options ``names`` (attribute names) that is given but below 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
