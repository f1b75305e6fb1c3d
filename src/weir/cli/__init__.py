"""weir's command line: a Typer app in `main.py`, one noun per module (`server`, `worker`, ...)."""
