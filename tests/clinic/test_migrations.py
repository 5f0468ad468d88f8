"""The schema comes from the Alembic migrations: an empty database upgrades to head (matching
the models exactly) and downgrades back to empty."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from neuromod.clinic.db import Base, downgrade, make_engine, upgrade


def test_upgrade_empty_database_and_downgrade(database_url):
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == set()
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            head = connection.exec_driver_sql("SELECT seq, hash FROM audit_head").all()
        assert differences == []
        assert head == [(0, "0" * 64)]
        downgrade(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)  # and up again
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
