"""Imported before httpx by `weir.client`: httpx imports its own command-line tool on
import whenever click, rich and pygments are installed, as they are beside uvicorn and
typer. That is ~40 ms of every CLI command and run process, for a tool no weir process
calls; with this, `httpx.main` says it cannot run instead."""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
