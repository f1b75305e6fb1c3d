"""Storage: engines and sessions, table models, queries (repos) and migrations."""
