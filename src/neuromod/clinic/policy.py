"""Who may do what: the one policy table of the clinic (role x permission).

Every API route names exactly one permission (shown in its OpenAPI operation as
``x-permission``); :func:`allowed` is the only place a role is checked against it. Roles:

- ``admin``: accounts and everything else;
- ``injector``: clinical records (consultations, plans, predictions, sessions, follow-ups,
  lots and recalls, exports) and everything the front desk does;
- ``front_desk``: patients' contact details, consents on file, reminders and appointments, the
  due list; no clinical notes.
"""

from __future__ import annotations

from types import MappingProxyType

#: a route anyone may call (signing in).
PUBLIC = "public"

#: every permission and what it covers.
PERMISSIONS = MappingProxyType({
    "session": "see and end one's own sign-in",
    "accounts.manage": "create, change and disable staff accounts",
    "patients.read": "patients' identity and contact details",
    "patients.write": "register patients, change contact details, void a patient record",
    "consents.read": "consents on file",
    "consents.write": "record or void a consent",
    "clinical.read": "consultations, plans with predictions, sessions, follow-ups",
    "clinical.write": "record or void consultations, plans, sessions, follow-ups",
    "lots.read": "product lots, stock and recalls",
    "lots.write": "receive, reconstitute or void a lot",
    "reminders.read": "reminders, appointments and the re-treatment due list",
    "reminders.write": "create, complete or void reminders",
    "predict": "model predictions for a plan",
    "records.export": "export a patient's record (FHIR)",
    "audit.read": "read and verify the audit log",
})

_FRONT_DESK = frozenset({"session", "patients.read", "patients.write", "consents.read", "consents.write",
                         "reminders.read", "reminders.write"})
_INJECTOR = _FRONT_DESK | {"clinical.read", "clinical.write", "lots.read", "lots.write", "predict",
                           "records.export"}

#: THE policy table: role -> the permissions it holds.
POLICY = MappingProxyType({
    "admin": frozenset(PERMISSIONS),
    "injector": frozenset(_INJECTOR),
    "front_desk": _FRONT_DESK,
})

ROLES = tuple(POLICY)


def allowed(role: str | None, permission: str) -> bool:
    """Whether ``role`` (None: not signed in) may use a route guarded by ``permission``."""
    if permission == PUBLIC:
        return True
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return role is not None and permission in POLICY.get(role, frozenset())
