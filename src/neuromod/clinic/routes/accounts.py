"""Staff accounts (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic.db import Account
from neuromod.clinic.deps import ClinicError, get_db, require, writing
from neuromod.clinic.records import create, get_record, update_fields
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.security import Actor, hash_password
from neuromod.schemas.clinic import AccountCreate, AccountUpdate

router = APIRouter(prefix="/api/accounts", tags=["accounts"])


@router.get("")
def list_accounts(db: Session = Depends(get_db), actor: Actor = Depends(require("accounts.manage"))) -> list[dict]:
    return answers(db.execute(select(Account).order_by(Account.id)).scalars())


@router.post("", status_code=201)
def create_account(body: AccountCreate, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("accounts.manage"))) -> dict:
    with writing(db):
        if db.execute(select(Account.id).where(Account.username == body.username)).first():
            raise ClinicError(409, f"username: {body.username!r} is taken")
        account = create(db, actor, Account(username=body.username, full_name=body.full_name, role=body.role,
                                            password_hash=hash_password(body.password)))
    return answer(account)


@router.patch("/{account_id}")
def update_account(account_id: RecordId, body: AccountUpdate, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("accounts.manage"))) -> dict:
    changes = body.model_dump(exclude_unset=True)
    if "password" in changes:
        changes["password_hash"] = hash_password(changes.pop("password"))
    with writing(db):
        account = update_fields(db, actor, get_record(db, Account, account_id, "account_id"), changes)
    return answer(account)
