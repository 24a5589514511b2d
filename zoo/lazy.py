"""Names a package loads on first use (PEP 562): how the torch-free parts of zoo import without torch.

``zoo``, ``zoo.data`` and ``zoo.export`` each list their torch-side names here, so
``python -m zoo.export.predict`` (onnxruntime, numpy and Pillow only) never loads torch.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, loading each name of ``table`` on first use.

    Args:
        package: the package's ``__name__``.
        table: name -> the module defining it; a name that is the module itself
            (``{"nn": "zoo.nn"}``) gives the module.

    Accessing a name whose module cannot be imported (torch missing) raises
    ImportError naming what is missing.
    """
    def __getattr__(name: str) -> Any:
        """Import the module defining ``name`` on first use."""
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(table[name])
        except ImportError as err:
            raise ImportError(f"{package}.{name} needs {err.name or 'a module'}, which failed to import: {err}") from err
        value = module if table[name] == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        """Public names, loaded or not."""
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
