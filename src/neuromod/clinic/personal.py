"""Personal predictions for stored patients: the record as a treatment history, conditioned on
the patient's own follow-ups (:func:`neuromod.trials.personal.personalize`).

The history document (``docs/personal.md``) is built from the database:

- ``patient``: age at the first live session (from the birth date), sex, smoking, sun exposure;
  baseline FWS from the first live consultation (before any treatment);
- ``treatments``: every live session, its day counted from the first session's date, its
  injections as an explicit-injection plan of its product at its lot's dilution;
- ``observations``: every live follow-up's grades per area (rater: investigator, as the clinic's
  staff grade them), and the patient-reported onset as ``onset_noticed: true`` on that day.

Answers are cached per history document (the document *is* the key: any new, changed or voided
record changes it), bounded to :data:`CACHE_SIZE` entries, so the due list and the patient page
pay the posterior once per change of the record.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic.db import Consultation, FollowUp, Lot, Patient, TreatmentSession
from neuromod.clinic.deps import ClinicError
from neuromod.schemas.clinic import age_on
from neuromod.schemas.history import HistoryError, parse_history
from neuromod.trials.personal import API_PARTICLES, personalize

#: assumption: a few hundred patients' full answers (~50-150 kB of JSON each) bound the cache to tens of MB.
CACHE_SIZE = 256
#: assumption: the due list keeps only each patient's re-treatment day (a few hundred bytes with
#: its key), so a clinic of up to this many followed patients never recomputes an unchanged one.
RETREAT_CACHE_SIZE = 20_000
#: the horizon of the due list's and the patient page's prediction (days after the last session);
#: the API's default too, so the three share cached answers.
DEFAULT_DAYS_AHEAD = 180
#: the seed of the API's twins (same record, same answer).
API_SEED = 0

_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_retreat_cache: OrderedDict[str, "PersonalRetreat"] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class StoredHistory:
    """A patient's history document and what the clinic needs to place it on the calendar."""

    document: dict[str, Any]
    first_session_date: str
    follow_ups: int


@dataclass(frozen=True)
class PersonalRetreat:
    """What the due list needs: the first session's date and the personal re-treatment day
    (days from it; None when no treated area's median wear-off falls within the horizon)."""

    first_session_date: str
    retreat_day: float | None


def whole_grade(grade: float) -> int:
    """A recorded grade as the history's integer FWS grade (the rater model is ordinal over 0-3).
    Assumption: a half grade (the clinic's forms allow halves) rounds up, toward the deeper line,
    so an ambiguous finding moves the predicted wear-off earlier, never a re-treatment later."""
    return int(math.floor(float(grade) + 0.5))


def no_session(patient_id: int) -> ClinicError:
    return ClinicError(409, f"patient_id: patient {patient_id} has no treatment session yet; a personal prediction "
                            "starts from the first recorded session (record one, or use /api/predict for a plan)")


def stored_history(db: Session, patient: Patient) -> StoredHistory | None:
    """The patient's record as a history document (see the module docstring); None without a live session."""
    sessions = db.execute(select(TreatmentSession, Lot).join(Lot, Lot.id == TreatmentSession.lot_id).where(
        TreatmentSession.patient_id == patient.id, TreatmentSession.voided_at.is_(None))
        .order_by(TreatmentSession.given_at, TreatmentSession.id)).all()
    if not sessions:
        return None
    first = sessions[0][0].given_at.date()
    consultation = db.execute(select(Consultation).where(
        Consultation.patient_id == patient.id, Consultation.voided_at.is_(None))
        .order_by(Consultation.held_at, Consultation.id).limit(1)).scalar_one_or_none()
    treatments = []
    session_day: dict[int, int] = {}
    for session, lot in sessions:
        day = (session.given_at.date() - first).days
        session_day[session.id] = day
        plan: dict[str, Any] = {"product": session.product, "vial_units": lot.vial_units,
                                "injections": session.injections}
        if lot.saline_ml is not None:
            plan["saline_ml"] = lot.saline_ml
        treatments.append({"day": day, "plan": plan})
    follow_ups = db.execute(select(FollowUp).where(
        FollowUp.patient_id == patient.id, FollowUp.voided_at.is_(None), FollowUp.session_id.in_(session_day))
        .order_by(FollowUp.seen_at, FollowUp.id)).scalars().all()
    observations: list[dict[str, Any]] = []
    onset_day: dict[int, int] = {}
    for seen in follow_ups:
        day = (seen.seen_at.date() - first).days
        for area, grades in seen.observed.items():
            observations.append({"day": day, "area": area, "fws_contraction": whole_grade(grades["contraction"]),
                                 "fws_rest": whole_grade(grades["rest"]), "rater": "investigator"})
        if seen.patient_reported_onset_day is not None:  # one report per session: the latest follow-up's
            onset_day[seen.session_id] = session_day[seen.session_id] + math.ceil(seen.patient_reported_onset_day)
    # noticed an effect by then (whole days, rounded up)
    observations += [{"day": day, "onset_noticed": True} for day in onset_day.values()]
    document = {
        "patient": {"age": round(age_on(patient.birth_date, first), 2), "sex": patient.sex,
                    "smoking": patient.smoking, "sun_exposure": patient.sun_exposure,
                    "baseline": dict(consultation.baseline) if consultation else {}},
        "treatments": treatments,
        "observations": observations,
    }
    return StoredHistory(document, first.isoformat(), len(follow_ups))


def personal_prediction(db: Session, patient: Patient, days_ahead: int = DEFAULT_DAYS_AHEAD) -> dict[str, Any]:
    """``personalize(history).to_json()`` for a stored patient at :data:`API_PARTICLES` twins,
    plus ``first_treatment_date`` (days in the answer count from it). Raises a 409
    :class:`ClinicError` without a session, or when the stored sessions do not form a valid history."""
    stored = stored_history(db, patient)
    if stored is None:
        raise no_session(patient.id)
    key = _key(stored, days_ahead)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        history = parse_history(stored.document)
    except HistoryError as error:
        raise ClinicError(409, f"history: the stored record is not a valid treatment history: {error}") from None
    prediction = personalize(history, days_ahead=days_ahead, particles=API_PARTICLES, seed=API_SEED)
    answer = {**prediction.to_json(), "first_treatment_date": stored.first_session_date}
    with _cache_lock:
        _cache[key] = answer
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        if days_ahead == DEFAULT_DAYS_AHEAD:
            _remember_retreat(key, PersonalRetreat(stored.first_session_date, answer["retreat_day"]))
    return answer


def personal_retreat(db: Session, patient: Patient) -> PersonalRetreat:
    """The personal re-treatment day at the default horizon (the due list's question), from its
    own larger cache of small entries; computes the prediction only for a new or changed record."""
    stored = stored_history(db, patient)
    if stored is None:
        raise no_session(patient.id)
    key = _key(stored, DEFAULT_DAYS_AHEAD)
    with _cache_lock:
        if key in _retreat_cache:
            _retreat_cache.move_to_end(key)
            return _retreat_cache[key]
    answer = personal_prediction(db, patient)
    return PersonalRetreat(stored.first_session_date, answer["retreat_day"])


def _key(stored: StoredHistory, days_ahead: int) -> str:
    return json.dumps([stored.document, days_ahead], sort_keys=True, default=str)


def _remember_retreat(key: str, retreat: PersonalRetreat) -> None:
    _retreat_cache[key] = retreat
    _retreat_cache.move_to_end(key)
    while len(_retreat_cache) > RETREAT_CACHE_SIZE:
        _retreat_cache.popitem(last=False)


def clear_cache() -> None:
    """Forget every cached answer (tests measuring the uncached latency)."""
    with _cache_lock:
        _cache.clear()
        _retreat_cache.clear()
