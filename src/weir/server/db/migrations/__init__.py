"""weir's one Alembic history, for SQLite and PostgreSQL alike.

Users never see Alembic: `weir server start` calls `weir.server.db.migrate.ensure_schema`,
and `weir server database upgrade|downgrade|reset|revision` move the schema by hand.
No alembic.ini: `migrate.alembic_config()` builds the configuration in code.

Adding a revision, for developers: change `models.py`, bring a scratch database to
head, let Alembic write the difference, then read and fix what it wrote::

    export WEIR_SERVER_DATABASE_URL=sqlite+aiosqlite:////tmp/weir-dev.db
    python -m weir.server.db.migrations upgrade head
    python -m weir.server.db.migrations revision --autogenerate --rev-id 0002 -m "add widgets"

`python -m weir.server.db.migrations` is Alembic's own command line (`--help` lists
its commands) on this history and the database of the current weir settings. Keep
revision ids numbered (`--rev-id`), and set `migrate.HEAD` to the new id; a test
fails until you do. Every revision runs on both dialects: table changes are
rendered as `batch_alter_table` (SQLite rebuilds the table), and
`tests/server/db/test_migrations.py` checks on both that head equals the models.
"""
