"""Small helpers of the route modules: answers as JSON documents, paging bounds."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from neuromod.clinic.db import Base, record_dict

#: most rows one list answer returns.
MAX_PAGE = 500


def answer(record: Base) -> dict[str, Any]:
    """A record as the API returns it (every column, times in ISO 8601, no password hash)."""
    return record_dict(record, digest=False)


def answers(records: Any) -> list[dict[str, Any]]:
    return [answer(r) for r in records]


def page_limit(limit: int = Query(100, ge=1, le=MAX_PAGE, description=f"rows, 1-{MAX_PAGE}")) -> int:
    return limit


def page_offset(offset: int = Query(0, ge=0, le=10_000_000, description="rows to skip")) -> int:
    return offset
