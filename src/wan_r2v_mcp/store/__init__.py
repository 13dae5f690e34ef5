"""Where rows and files live: the Store contract and its stores, the records they hold, the data folder.

Every SQL statement of the project is in this package (a test holds it so).
"""

from __future__ import annotations

from .base import Store
from .files import DataDir
from .records import Conflict, SequenceRecord, Spend, TaskRecord


def open_store(data: DataDir, database_url: str | None = None) -> Store:
    """PostgreSQL when a database URL is given (a team's replicas share it); else the embedded default, SQLite in the
    data folder."""
    if database_url:
        from .postgres import PostgresStore

        return PostgresStore(database_url)
    from .sqlite import SQLiteStore

    return SQLiteStore(data.ledger)


__all__ = ["Conflict", "DataDir", "SequenceRecord", "Spend", "Store", "TaskRecord", "open_store"]
