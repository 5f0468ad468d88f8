"""The clinic's pages: server-rendered (Jinja2) views of the records, with small scripts that
send every change to the clinic API (``/api/...``, session cookie plus the CSRF header).

Each page names one policy permission (:func:`page`), exactly like the API routes, so the
policy table decides who sees what: not signed in -> redirected to the sign-in page; signed in
without the permission -> a 403 page that says which permission is missing (the front desk
never sees a clinical page). Pages only read; writing is the API's job, so every rule
(session rules, CSRF, audit) is enforced in one place.

The one endpoint added here is ``POST /api/patients/{id}/evaluate``: the plan editor's live
evaluation of a draft (:mod:`.evaluate`), which saves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic import audit as audit_log
from neuromod.clinic.db import (
    Account,
    AuditEntry,
    Consent,
    Consultation,
    FollowUp,
    Lot,
    Patient,
    PlanRecord,
    Reminder,
    TreatmentSession,
    utcnow,
)
from neuromod.clinic.deps import (
    ClinicError,
    current_actor,
    get_db,
    invalid,
    not_found,
    require,
    writing,
)
from neuromod.clinic.due import due_list
from neuromod.clinic.personal import personal_prediction
from neuromod.clinic.policy import PERMISSIONS, POLICY, allowed
from neuromod.clinic.predictions import personal_plan
from neuromod.clinic.records import get_record, live, live_patient
from neuromod.clinic.routes._common import MAX_PAGE, RecordId
from neuromod.clinic.routes.lots import recall_lot
from neuromod.clinic.routes.patients import list_patients
from neuromod.clinic.security import Actor
from neuromod.clinic.web.course_plot import Observation, course_svg, personal_svg
from neuromod.clinic.web.evaluate import evaluate_draft
from neuromod.clinic.web.face_chart import ChartPoint, face_chart_svg
from neuromod.clinic.web.photos import (
    PHOTO_VIEWS,
    PhotoError,
    PhotoStore,
    PhotoView,
    clean_image,
    photo_root,
)
from neuromod.model.simulate import DISCLAIMER, simulate
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.products import load_products
from neuromod.schemas.clinic import PlanSave
from neuromod.schemas.plan import (
    DEFAULT_DEPTH_MM,
    MAX_ONA_UNITS_PER_SITE,
    PlanError,
    parse_plan,
)
from neuromod.reference.clinical import load_planning

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(directory=str(resources.files("neuromod.clinic.web").joinpath("templates")))

#: lots expiring within this many days are flagged on the lots page (assumption: a month's notice
#: lets a clinic use or return stock before it expires).
EXPIRY_WARNING_DAYS = 30
#: the due list looks this far ahead by default (days).
DUE_HORIZON_DAYS = 30
#: assumption: a free point on the chart starts at 2 onabotulinumtoxinA-equivalent units (the
#: smallest label site dose, Botox Cosmetic lateral canthal lines) for the injector to adjust.
FREE_POINT_ONA_UNITS = 2.0
#: audit entries shown per page.
AUDIT_PAGE = 200


class PageRefused(Exception):
    """A page the caller may not open: ``redirect`` to sign in, or a 403 naming the permission."""

    def __init__(self, status: int, message: str, redirect: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.redirect = status, message, redirect


@cache
def page(permission: str) -> Callable[..., Any]:
    """The dependency guarding a page with one policy permission (the same object per permission)."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def guard(request: Request, actor: Actor | None = Depends(current_actor)) -> Actor:
        if actor is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise PageRefused(303, "sign in first", redirect=f"/sign-in?next={quote(target, safe='')}")
        if not allowed(actor.role, permission):
            raise PageRefused(403, f"role {actor.role} may not {PERMISSIONS[permission]} ({permission})")
        return actor

    guard.permission = permission  # type: ignore[attr-defined]
    return guard


def refused_handler(request: Request, error: PageRefused) -> Response:
    if error.redirect:
        return RedirectResponse(error.redirect, status_code=303)
    title = "Not found" if error.status == 404 else "Not allowed"
    return templates.TemplateResponse(request, "refused.html", {"message": error.message, "title": title,
                                                                "actor": None, "nav": []}, status_code=error.status)


#: navigation entries: (permission needed, path, label).
NAVIGATION = (
    ("patients.read", "/patients", "Patients"),
    ("reminders.read", "/due", "Due list"),
    ("lots.read", "/lots", "Lots"),
    ("audit.read", "/audit", "Audit log"),
)


def render(request: Request, actor: Actor | None, name: str, **context: Any) -> HTMLResponse:
    nav = [(path, label) for permission, path, label in NAVIGATION if actor and allowed(actor.role, permission)]
    may = sorted(POLICY[actor.role]) if actor else []
    return templates.TemplateResponse(request, name, {"actor": actor, "nav": nav, "may": may,
                                                      "disclaimer": DISCLAIMER, **context})


def page_patient(db: Session, patient_id: int) -> Patient:
    """The live patient of a page, or the 404 page naming the id."""
    try:
        return live_patient(db, patient_id)
    except ClinicError as error:
        raise PageRefused(error.status, error.message) from None


# -- sign-in -------------------------------------------------------------------------------
@router.get("/", include_in_schema=False)
def home(actor: Actor | None = Depends(require("public"))) -> RedirectResponse:
    return RedirectResponse("/patients" if actor else "/sign-in", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
def sign_in_page(request: Request, next: str = Query("/patients", max_length=500),
                 actor: Actor | None = Depends(require("public"))) -> HTMLResponse:
    target = next if next.startswith("/") and not next.startswith("//") else "/patients"
    return render(request, actor, "sign_in.html", next=target)


# -- patients ------------------------------------------------------------------------------
@router.get("/patients", response_class=HTMLResponse, include_in_schema=False)
def patients_page(request: Request, q: str = Query("", max_length=100), db: Session = Depends(get_db),
                  actor: Actor = Depends(page("patients.read"))) -> HTMLResponse:
    """The patients list and search: the answer of ``GET /api/patients`` (the same query), as a page."""
    rows = list_patients(q=q or None, include_void=False, limit=MAX_PAGE, offset=0, db=db, actor=actor)
    return render(request, actor, "patients.html", patients=rows, q=q,
                  clinical=allowed(actor.role, "clinical.read"), today=date.today())


@dataclass(frozen=True)
class SessionView:
    """A treatment session as the patient page shows it."""

    record: TreatmentSession
    lot: Lot
    injector: str
    chart: str
    areas: list[str]


def session_points(session: TreatmentSession, lot: Lot) -> list[ChartPoint]:
    """A session's injections resolved to points (sites to their position; volumes at the lot's dilution)."""
    document: dict = {"product": session.product, "vial_units": lot.vial_units, "injections": session.injections}
    if lot.saline_ml is not None:
        document["saline_ml"] = lot.saline_ml
    try:
        points = parse_plan(document).points()
    except PlanError:  # recorded under the rules of its day; draw what can be drawn
        return []
    return [ChartPoint(p.x_mm, p.y_mm, p.units, p.label.replace("_", " ")) for p in points]


def plan_injections_for_session(document: dict) -> list[dict]:
    """A saved plan's points as session injections (a standard site by name, a free point by x/y)."""
    plan = parse_plan({k: v for k, v in document.items() if k not in ("patient", "treatment_days")})
    face_map = load_face_map()
    injections = []
    for point in plan.points(face_map):
        if point.label in face_map.sites:
            injections.append({"site": point.label, "units": round(point.units, 3), "depth_mm": point.depth_mm})
        else:
            injections.append({"x_mm": point.x_mm, "y_mm": point.y_mm, "units": round(point.units, 3),
                               "depth_mm": point.depth_mm})
    return injections


def next_retreatment(db: Session, patient_id: int) -> dict | None:
    """The patient's next re-treatment date and its source, from the clinic's due list."""
    for item in due_list(db, date.today() + timedelta(days=3650)):
        if item.patient_id == patient_id and item.source != "reminder":
            return item.as_json()
    return None


def personal_view(db: Session, patient: Patient) -> dict | None:
    """The personal prediction for the page: the JSON answer of the API, its plot, and per
    area the wear-off interval as calendar dates (None when the record is no valid history)."""
    try:
        prediction = personal_prediction(db, patient)
    except ClinicError:
        return None
    first = date.fromisoformat(prediction["first_treatment_date"])

    def on(day: float | None) -> str | None:
        return None if day is None else (first + timedelta(days=round(day))).isoformat()

    wear = {area: {k: on(v) for k, v in p["wear_off_day"].items()} for area, p in prediction["areas"].items()}
    return {"prediction": prediction, "wear_off": wear, "retreat_on": on(prediction["retreat_day"]),
            "plot": personal_svg(prediction, list(prediction["areas"]), element_id="personal-course")}


@router.get("/patients/{patient_id}", response_class=HTMLResponse, include_in_schema=False)
def patient_page(patient_id: RecordId, request: Request, db: Session = Depends(get_db),
                 actor: Actor = Depends(page("clinical.read"))) -> HTMLResponse:
    patient = page_patient(db, patient_id)
    face_map = load_face_map()
    consents = db.execute(live(Consent).where(Consent.patient_id == patient_id).order_by(Consent.signed_at)).scalars().all()
    consultations = db.execute(live(Consultation).where(Consultation.patient_id == patient_id)
                               .order_by(Consultation.held_at)).scalars().all()
    plans = db.execute(live(PlanRecord).where(PlanRecord.patient_id == patient_id)
                       .order_by(PlanRecord.planned_for)).scalars().all()
    sessions = db.execute(live(TreatmentSession).where(TreatmentSession.patient_id == patient_id)
                          .order_by(TreatmentSession.given_at)).scalars().all()
    follow_ups = db.execute(live(FollowUp).where(FollowUp.patient_id == patient_id)
                            .order_by(FollowUp.seen_at)).scalars().all()
    reminders = db.execute(live(Reminder).where(Reminder.patient_id == patient_id)
                           .order_by(Reminder.due_on)).scalars().all()
    names = {a.id: a.full_name for a in db.execute(select(Account)).scalars()}
    session_views = []
    for session in sessions:
        lot = db.get(Lot, session.lot_id)
        points = session_points(session, lot)
        areas = sorted({face_map.sites[i["site"]].area for i in session.injections if i.get("site") in face_map.sites})
        session_views.append(SessionView(session, lot, names.get(session.injector_id, "?"),
                                         face_chart_svg(points, css_class="face-chart mini"), areas))
    plot = ""
    if plans:
        latest = plans[-1]
        # whole days after the planned treatment (the course's daily grid)
        observations = [Observation(float((seen.seen_at.date() - latest.planned_for.date()).days), area,
                                    scores["rest"], scores["contraction"], f"follow-up {seen.seen_at.date()}")
                        for seen in follow_ups for area, scores in seen.observed.items()]
        treated = {p.area for p in parse_plan({k: v for k, v in latest.document.items()
                                               if k not in ("treatment_days",)}).points(face_map)}
        plot = course_svg(latest.prediction, latest.treatment_day,
                          [a for a in face_map.areas if a in treated], observations, element_id="patient-course")
    personal = personal_view(db, patient) if sessions and follow_ups else None
    plan_injections = {plan.id: plan_injections_for_session(plan.document) for plan in plans}
    lots = db.execute(live(Lot).where(Lot.expires_on >= date.today()).order_by(Lot.expires_on)).scalars().all()
    photos: dict[str, dict[str, list]] = {}
    for record in photo_store(request).list(patient_id):
        photos.setdefault(record.view, {"before": [], "after": []})[record.stage].append(record)
    return render(request, actor, "patient.html", photos=photos, photo_views=PHOTO_VIEWS, patient=patient, consents=consents, consultations=consultations,
                  plans=plans, sessions=session_views, follow_ups=follow_ups, reminders=reminders, names=names,
                  plot=plot, plan_injections=plan_injections, lots=lots, areas=face_map.areas_with_sites,
                  next_due=next_retreatment(db, patient_id), now=utcnow(), personal=personal,
                  can_write=allowed(actor.role, "clinical.write"),
                  can_export=allowed(actor.role, "records.export"),
                  fhir_url=_fhir_url(request, patient_id))


def _fhir_url(request: Request, patient_id: int) -> str | None:
    """The API route exporting the patient's record as FHIR, if the app serves one (read from the
    app's OpenAPI document, built once and cached by FastAPI)."""
    for path, methods in request.app.openapi()["paths"].items():
        if path.startswith("/api/patients/{patient_id}") and path.endswith("/fhir") and "get" in methods:
            return path.replace("{patient_id}", str(patient_id))
    return None


@router.get("/patients/{patient_id}/plan", response_class=HTMLResponse, include_in_schema=False)
def plan_editor_page(patient_id: RecordId, request: Request, db: Session = Depends(get_db),
                     actor: Actor = Depends(page("clinical.write"))) -> HTMLResponse:
    patient = page_patient(db, patient_id)
    face_map = load_face_map()
    products = [p for p in load_products().values() if p.contains_toxin]
    defaults = {name: round(load_planning().reference_ona_units.get(site.area, FREE_POINT_ONA_UNITS / site.share) * site.share, 3)
                for name, site in face_map.sites.items()}
    catalogue = {p.name: {"units_per_ona_unit": p.units_per_ona_unit, "vial_units": p.vial_units,
                          "label_saline_ml": p.label_saline_ml,
                          "max_units_per_site": MAX_ONA_UNITS_PER_SITE * p.units_per_ona_unit}
                 for p in products}
    consultations = db.execute(live(Consultation).where(Consultation.patient_id == patient_id)
                               .order_by(Consultation.held_at.desc())).scalars().all()
    editor = {"patient_id": patient_id, "site_default_ona_units": defaults, "products": catalogue,
              "free_point_ona_units": FREE_POINT_ONA_UNITS, "default_depth_mm": DEFAULT_DEPTH_MM,
              "consultation_id": consultations[0].id if consultations else None}
    return render(request, actor, "plan_editor.html", patient=patient, products=products,
                  chart=face_chart_svg(interactive=True, element_id="face-chart"),
                  editor_json=json.dumps(editor))


@router.post("/api/patients/{patient_id}/evaluate", tags=["predict"])
def evaluate_plan(patient_id: RecordId, body: PlanSave, db: Session = Depends(get_db),
                  actor: Actor = Depends(require("predict"))) -> dict:
    """The plan editor's live evaluation of a draft for this patient (covariates and history
    filled in): totals per area and plan, other products' units with the evidence range, label
    limits, units reaching each muscle, eyelid/brow ptosis risk, the course with onset, peak and
    wear-off as SVG. Nothing is saved. Model estimates for planning and education, not medical advice."""
    patient = live_patient(db, patient_id)
    consultation = None
    if body.consultation_id is not None:
        consultation = get_record(db, Consultation, body.consultation_id, "consultation_id")
        if consultation.patient_id != patient_id:
            raise invalid(f"consultation_id: consultation {body.consultation_id} belongs to another patient")
    personal, treatment_day = personal_plan(db, patient, body.plan, body.planned_for or utcnow(), consultation)
    result = simulate(personal, days=int(treatment_day) + body.days)
    return evaluate_draft(result, treatment_day).as_json()


# -- clinic pages --------------------------------------------------------------------------
@router.get("/due", response_class=HTMLResponse, include_in_schema=False)
def due_page(request: Request, before: date | None = Query(None), db: Session = Depends(get_db),
             actor: Actor = Depends(page("reminders.read"))) -> HTMLResponse:
    before = before or date.today() + timedelta(days=DUE_HORIZON_DAYS)
    return render(request, actor, "due.html", items=due_list(db, before), before=before, today=date.today(),
                  clinical=allowed(actor.role, "clinical.read"))


@router.get("/lots", response_class=HTMLResponse, include_in_schema=False)
def lots_page(request: Request, db: Session = Depends(get_db),
              actor: Actor = Depends(page("lots.read"))) -> HTMLResponse:
    lots = db.execute(select(Lot).order_by(Lot.expires_on, Lot.id)).scalars().all()
    today = date.today()
    status = {}
    for lot in lots:
        if lot.voided_at is not None:
            status[lot.id] = ("void", "void")
        elif lot.expires_on < today:
            status[lot.id] = ("expired", f"expired {lot.expires_on}")
        elif lot.expires_on <= today + timedelta(days=EXPIRY_WARNING_DAYS):
            status[lot.id] = ("expiring", f"expires in {(lot.expires_on - today).days} days")
        else:
            status[lot.id] = ("ok", "in date")
    return render(request, actor, "lots.html", lots=lots, status=status,
                  products=[p for p in load_products().values() if p.contains_toxin],
                  can_write=allowed(actor.role, "lots.write"), can_recall=allowed(actor.role, "clinical.read"),
                  warning_days=EXPIRY_WARNING_DAYS)


@router.get("/lots/recall", response_class=HTMLResponse, include_in_schema=False)
def recall_page(request: Request, lot_number: str = Query("", max_length=60), db: Session = Depends(get_db),
                actor: Actor = Depends(page("clinical.read"))) -> HTMLResponse:
    """Recall look-up by lot number: ``GET /api/lots/{id}/recall`` for every lot with that number."""
    lot_ids = db.execute(select(Lot.id).where(Lot.lot_number == lot_number.strip()).order_by(Lot.id)).scalars().all()
    found = [recall_lot(lot_id=lot_id, db=db, actor=actor) for lot_id in lot_ids] if lot_number else []
    return render(request, actor, "recall.html", lot_number=lot_number, found=found)


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(request: Request, db: Session = Depends(get_db),
               actor: Actor = Depends(page("audit.read"))) -> HTMLResponse:
    entries = db.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(AUDIT_PAGE)).scalars().all()
    names = {a.id: a.username for a in db.execute(select(Account)).scalars()}
    verification = audit_log.verify(db)
    return render(request, actor, "audit.html", entries=entries, names=names, verification=verification)


# -- photos --------------------------------------------------------------------------------
def photo_store(request: Request) -> PhotoStore:
    return PhotoStore(photo_root(request.app.state.settings))


# multipart, so left out of the OpenAPI document (whose request bodies are all JSON documents);
# its permission is stamped and enforced like every route's (tests/web/test_photos.py)
@router.post("/api/patients/{patient_id}/photos", status_code=201, tags=["photos"], include_in_schema=False)
def upload_photo(patient_id: RecordId, request: Request, file: UploadFile = File(..., description="JPEG, PNG or WebP"),
                       view: PhotoView = Form(...), consultation_id: int | None = Form(None, ge=1),
                       follow_up_id: int | None = Form(None, ge=1), db: Session = Depends(get_db),
                       actor: Actor = Depends(require("clinical.write"))) -> dict:
    """Attach a photo to a consultation (before) or a follow-up (after). The image is re-encoded
    with no metadata (EXIF, GPS, ...) before it is stored; needs a granted photo consent on file."""
    if (consultation_id is None) == (follow_up_id is None):
        raise invalid("consultation_id/follow_up_id: give exactly one (a consultation's photo is 'before', "
                      "a follow-up's 'after')")
    data = file.file.read()
    try:
        image, width, height = clean_image(data)
    except PhotoError as error:
        raise invalid(str(error)) from None
    store = photo_store(request)
    record = None
    try:
        with writing(db):
            live_patient(db, patient_id)
            consent = db.execute(live(Consent).where(Consent.patient_id == patient_id, Consent.kind == "photo",
                                                     Consent.granted.is_(True))).first()
            if consent is None:
                raise invalid(f"consent: no granted photo consent on file for patient {patient_id}; record one first")
            if consultation_id is not None:
                owner = get_record(db, Consultation, consultation_id, "consultation_id")
                taken = owner.held_at
            else:
                owner = get_record(db, FollowUp, follow_up_id, "follow_up_id")
                taken = owner.seen_at
            if owner.patient_id != patient_id:
                field = "consultation_id" if consultation_id is not None else "follow_up_id"
                raise invalid(f"{field}: belongs to another patient")
            record = store.save(patient_id, image, width, height, view, consultation_id, follow_up_id,
                                taken.date().isoformat(), actor.account_id, utcnow())
            audit_log.append(db, actor.account_id, "create", "photos", None, after=record.as_json())
    except BaseException:
        if record is not None:
            store.discard(record)
        raise
    return record.as_json()


@router.get("/api/patients/{patient_id}/photos", tags=["photos"])
def list_photos(patient_id: RecordId, request: Request, db: Session = Depends(get_db),
                actor: Actor = Depends(require("clinical.read"))) -> list[dict]:
    live_patient(db, patient_id)
    return [record.as_json() for record in photo_store(request).list(patient_id)]


@router.get("/api/patients/{patient_id}/photos/{photo_id}", tags=["photos"], response_class=FileResponse)
def read_photo(patient_id: RecordId, photo_id: str, request: Request, db: Session = Depends(get_db),
               actor: Actor = Depends(require("clinical.read"))) -> FileResponse:
    """The stored image (JPEG without metadata)."""
    live_patient(db, patient_id)
    path = photo_store(request).image_path(patient_id, photo_id)
    if path is None:
        raise not_found("photo_id", "photo", photo_id)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
