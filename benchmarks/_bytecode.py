"""Compile weir's modules to bytecode before a benchmark starts processes.

An installed weir has its `.pyc` files (pip writes them); a source checkout gets
them on first import, unless PYTHONDONTWRITEBYTECODE is set, as it is in some
shells and containers. Then every process compiles ~200 modules from source
again: ~0.17 s of each CLI command and server start here, which no user pays.
`compileall` writes the files whatever that variable says, and a process that is
not allowed to write them still reads them.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import weir


def compile_weir() -> None:
    """Write weir's missing or stale `.pyc` files, and say so when some were missing."""
    package = Path(weir.__file__).parent
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("  (PYTHONDONTWRITEBYTECODE is set: weir's .pyc files written by compileall first,")
        print("   as an installed weir has them)")
    compileall.compile_dir(package, quiet=2)
