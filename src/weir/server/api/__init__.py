"""The REST API under `/api`: one router per resource, each thin over `db.repos`."""
