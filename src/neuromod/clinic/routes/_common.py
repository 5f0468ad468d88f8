"""Small helpers of the route modules: answers as JSON documents, paging bounds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from neuromod.clinic.db import Base, record_dict
from neuromod.schemas.clinic import MAX_RECORD_ID

#: most rows one list answer returns.
MAX_PAGE = 500


#: a record id in a path: 1 to the largest database key (a larger one is a 422, not a crash).
RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description=f"record id, 1-{MAX_RECORD_ID}")]


def answer(record: Base) -> dict[str, Any]:
    """A record as the API returns it (every column, times in ISO 8601, no password hash)."""
    return record_dict(record, digest=False)


def answers(records: Any) -> list[dict[str, Any]]:
    return [answer(r) for r in records]


def page_limit(limit: int = Query(100, ge=1, le=MAX_PAGE, description=f"rows, 1-{MAX_PAGE}")) -> int:
    return limit


def page_offset(offset: int = Query(0, ge=0, le=10_000_000, description="rows to skip")) -> int:
    return offset
