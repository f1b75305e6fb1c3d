"""weir's test suite; `tests/` mirrors `src/weir/`."""
