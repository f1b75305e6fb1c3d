"""Revisions of weir's history, one module each, numbered in order."""
