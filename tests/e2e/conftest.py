"""End-to-end tests run against the same real Postgres as the gateway tests (a fresh database
cloned from the migrated template per test)."""

from tests.gateway.conftest import db_url, pg_admin_url, pg_template

__all__ = ["db_url", "pg_admin_url", "pg_template"]
