"""The append-only, hash-chained audit log.

Every create, update, void, export and sign-in appends one entry: who (account id), when (UTC),
what (action, entity, id) and the record before and after. Entry ``n`` stores
``hash_n = sha256(hash_{n-1} + payload_n)`` where ``payload_n`` is the canonical JSON of the
entry; the head row keeps the last sequence number and hash. :func:`verify` recomputes the
chain: an edited entry breaks its hash, a deleted one leaves a gap in the sequence or breaks the
next link, a deleted tail disagrees with the head.

Writers call :func:`claim` first in their transaction: it locks the head row, so appends are
serialised (on SQLite the write lock, on PostgreSQL the row lock) and the chain stays linear.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from neuromod.clinic.db import AuditEntry, AuditHead, utcnow

#: the hash the first entry links to (the migration writes it into the head row).
GENESIS_HASH = "0" * 64
#: entries read per batch while verifying (bounded memory however long the log).
VERIFY_BATCH = 1000


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def link_hash(prev_hash: str, payload: str) -> str:
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


def claim(db: Session) -> None:
    """Take the writer's lock (the audit head row) at the start of a write transaction."""
    db.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))


def append(db: Session, actor_id: int | None, action: str, entity: str, entity_id: int | None,
           before: dict | None = None, after: dict | None = None, at: datetime | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction (after :func:`claim`)."""
    seq, prev_hash = db.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    at = at or utcnow()
    document = {"seq": seq + 1, "at": at.isoformat(), "actor_id": actor_id, "action": action, "entity": entity,
                "entity_id": entity_id, "before": before, "after": after}
    payload = canonical_json(document)
    entry = AuditEntry(seq=seq + 1, at=at, actor_id=actor_id, action=action, entity=entity, entity_id=entity_id,
                       payload=payload, prev_hash=prev_hash, hash=link_hash(prev_hash, payload))
    db.add(entry)
    db.flush()
    db.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=entry.seq, hash=entry.hash))
    return entry


@dataclass
class Verification:
    """What :func:`verify` found: ``ok`` only when every link and the head agree."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(db: Session, max_problems: int = 20) -> Verification:
    """Recompute the whole chain (in batches); report each broken link, gap or column edit."""
    result = Verification()
    expected_seq, prev_hash = 1, GENESIS_HASH
    last_seq = 0
    while len(result.problems) < max_problems:
        batch = db.execute(select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq)
                           .limit(VERIFY_BATCH)).scalars().all()
        if not batch:
            break
        for entry in batch:
            result.entries += 1
            if entry.seq != expected_seq:
                result.problems.append(f"entry {expected_seq}: missing (next entry is {entry.seq})")
            if entry.prev_hash != prev_hash:
                result.problems.append(f"entry {entry.seq}: does not link to the entry before it")
            if link_hash(entry.prev_hash, entry.payload) != entry.hash:
                result.problems.append(f"entry {entry.seq}: payload edited (hash mismatch)")
            else:
                document = json.loads(entry.payload)
                columns = {"seq": entry.seq, "at": entry.at.isoformat(), "actor_id": entry.actor_id,
                           "action": entry.action, "entity": entry.entity, "entity_id": entry.entity_id}
                edited = sorted(k for k, v in columns.items() if document.get(k) != v)
                if edited:
                    result.problems.append(f"entry {entry.seq}: column(s) {', '.join(edited)} edited")
            expected_seq, prev_hash = entry.seq + 1, entry.hash
            last_seq = entry.seq
        db.expunge_all()
    head_seq, head_hash = db.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    if head_seq != last_seq or head_hash != prev_hash:
        result.problems.append(f"head: the log should end at entry {head_seq} but ends at entry {last_seq} "
                               "(entries deleted or head edited)")
    return result
