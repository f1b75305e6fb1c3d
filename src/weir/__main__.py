"""`python -m weir …` is the `weir` command."""

from weir.cli.main import main

main()
