"""Package exports imported on first use (PEP 562), so that importing one light module of a
package does not pull its heavy siblings (pandas, SimPy, pyarrow) in: what keeps a CLI's
``--help`` fast."""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` for ``package``: ``exports`` maps a name to the module that
    defines it; the first access imports it and caches the value in the package."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
