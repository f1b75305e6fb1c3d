"""Pure domain for weir: states, ids, clocks, run names. No I/O, no settings."""
