"""Workers: processes that claim runs from a work pool and start them (DESIGN.md §2)."""
