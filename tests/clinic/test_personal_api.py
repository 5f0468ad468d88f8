"""The stored patient's personal prediction through the API, on each backend: the history is
built from the record, the answer has the documented JSON shape, the follow-ups move the
wear-off the way they point, the due list names where each date came from, and the guards hold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from neuromod.clinic.personal import clear_cache
from neuromod.schemas.plan import parse_plan
from tests.clinic.test_clinic_day import receive_lot, register_patient

TODAY = date.today()
#: the session 100 days ago: a day-60 follow-up is already in the record.
TREATED = datetime.combine(TODAY - timedelta(days=100), datetime.min.time(), tzinfo=UTC).replace(hour=10)
BANDS = {"p05", "p25", "median", "p75", "p95"}


def treated_patient(clinic, lot, follow_ups=(), **names):
    """A patient with a severe-glabella consultation, a saved plan and its session (botox 20 U glabella) on TREATED;
    ``follow_ups``: (day after the session, contraction grade, rest grade)."""
    injector = clinic.as_role("injector")
    pid = register_patient(clinic, **names)["id"]
    consultation = clinic.client.post(f"/api/patients/{pid}/consultations", headers=injector, json={
        "held_at": (TREATED - timedelta(days=1)).isoformat(), "concerns": "frown lines",
        "baseline": {"glabella": {"rest": 1, "contraction": 3}}})
    assert consultation.status_code == 201, consultation.text
    plan = clinic.client.post(f"/api/patients/{pid}/plans", headers=injector, json={
        "plan": {"product": "botox", "areas": {"glabella": 20}}, "planned_for": TREATED.isoformat()})
    assert plan.status_code == 201, plan.text
    sites = [p.label for p in parse_plan({"product": "botox", "areas": {"glabella": 20}}).points()]
    session = clinic.client.post(f"/api/patients/{pid}/sessions", headers=injector, json={
        "product": "botox", "lot_id": lot["id"], "given_at": TREATED.isoformat(), "plan_id": plan.json()["id"],
        "injections": [{"site": s, "units": 4} for s in sites]})
    assert session.status_code == 201, session.text
    for day, contraction, rest in follow_ups:
        seen = clinic.client.post(f"/api/patients/{pid}/follow-ups", headers=injector, json={
            "session_id": session.json()["id"], "seen_at": (TREATED + timedelta(days=day)).isoformat(),
            "observed": {"glabella": {"rest": rest, "contraction": contraction}}, "patient_reported_onset_day": 3})
        assert seen.status_code == 201, seen.text
    return pid


def test_personal_prediction_follows_the_follow_ups(clinic):
    clear_cache()
    injector = clinic.as_role("injector")
    lot = receive_lot(clinic)
    # at best moderate, and back at the baseline grade by six weeks: an early wear-off for this patient
    fast = treated_patient(clinic, lot, follow_ups=[(14, 2, 1), (45, 3, 1)])
    usual = treated_patient(clinic, lot, given_name="Ana")
    answer = clinic.client.get(f"/api/patients/{fast}/prediction", headers=injector)
    assert answer.status_code == 200, answer.text
    personal = answer.json()
    assert set(personal) >= {"areas", "retreat_day", "parameters", "diagnostic", "observations", "notes",
                             "disclaimer", "first_treatment_date"}
    glabella = personal["areas"]["glabella"]
    assert glabella["days"][0] == 0 and glabella["days"][-1] == 180
    assert set(glabella["fws_contraction"]) == BANDS and set(glabella["fws_rest"]) == BANDS
    assert len(glabella["fws_contraction"]["median"]) == len(glabella["days"])
    assert set(glabella["wear_off_day"]) == {"p05", "median", "p95"}
    assert "not medical advice" in personal["disclaimer"]
    assert personal["first_treatment_date"] == TREATED.date().isoformat()
    # the record's follow-ups are the observations: grades per area as investigator, reported onset
    assert {"day": 45, "area": "glabella", "fws_contraction": 3, "fws_rest": 1, "rater": "investigator"} \
        in personal["observations"]
    assert {"day": 3, "onset_noticed": True, "rater": "investigator"} in personal["observations"]
    assert personal["diagnostic"]["observations"] == 3 and personal["diagnostic"]["method"] != "prior (no observations)"
    assert personal["parameters"]["half_block_scale"]["posterior_median"] > 0

    population = clinic.client.get(f"/api/patients/{usual}/prediction", headers=injector).json()
    assert population["diagnostic"]["method"] == "prior (no observations)"
    early, typical = glabella["wear_off_day"]["median"], population["areas"]["glabella"]["wear_off_day"]["median"]
    assert early is not None and typical is not None
    assert early < typical - 10, (early, typical)  # the day-45 grade pulls the wear-off well before the population's
    assert personal["retreat_day"] == max(early, 90)  # never before the label interval

    # the due list: personal for the patient with follow-ups, population for the other
    front_desk = clinic.as_role("front_desk")
    due = clinic.client.get("/api/reminders/due", params={"before": (TODAY + timedelta(days=400)).isoformat()},
                            headers=front_desk).json()
    by_patient = {item["patient_id"]: item for item in due}
    assert by_patient[fast]["source"] == "personal"
    assert by_patient[fast]["due_on"] == (TREATED.date() + timedelta(days=round(personal["retreat_day"]))).isoformat()
    # without follow-ups: the saved plan's (population) wear-off, or the label interval when that comes sooner
    plan_wear_off = clinic.client.get(f"/api/patients/{usual}/plans", headers=injector).json()[0]["wear_off_after_days"]
    assert by_patient[usual]["source"] == ("population" if plan_wear_off >= 90 else "label interval")
    assert by_patient[fast]["due_on"] <= by_patient[usual]["due_on"]

    # a new follow-up changes the record, so the cached answer is not reused: the date turns personal
    session_id = clinic.client.get(f"/api/patients/{usual}/sessions", headers=injector).json()[0]["id"]
    seen = clinic.client.post(f"/api/patients/{usual}/follow-ups", headers=injector, json={
        "session_id": session_id, "seen_at": (TREATED + timedelta(days=60)).isoformat(),
        "observed": {"glabella": {"rest": 1, "contraction": 3}}})
    assert seen.status_code == 201, seen.text
    due = clinic.client.get("/api/reminders/due", params={"before": (TODAY + timedelta(days=400)).isoformat()},
                            headers=front_desk).json()
    assert {item["patient_id"]: item["source"] for item in due}[usual] == "personal"

    # the patient page shows it, with the disclaimer
    page = clinic.client.get(f"/patients/{fast}", headers=injector)
    assert page.status_code == 200
    assert 'id="personal-prediction"' in page.text and "personal-band" in page.text
    assert "not medical advice" in page.text


def test_prediction_guards_and_bad_options(clinic):
    injector = clinic.as_role("injector")
    pid = register_patient(clinic)["id"]
    url = f"/api/patients/{pid}/prediction"
    assert clinic.client.get(url).status_code == 401
    refused = clinic.client.get(url, headers=clinic.as_role("front_desk"))
    assert refused.status_code == 403 and "clinical.read" in refused.json()["detail"]
    untreated = clinic.client.get(url, headers=injector)
    assert untreated.status_code == 409
    assert untreated.json()["detail"].startswith("patient_id:") and "no treatment session" in untreated.json()["detail"]
    for params, field in (({"days_ahead": 0}, "days_ahead"), ({"days_ahead": 731}, "days_ahead"),
                          ({"days_ahead": "soon"}, "days_ahead")):
        bad = clinic.client.get(url, params=params, headers=injector)
        assert bad.status_code == 422, (params, bad.text)
        assert field in bad.json()["detail"], bad.text
    assert clinic.client.get("/api/patients/999999/prediction", headers=injector).status_code == 404
    clinic.client.post(f"/api/patients/{pid}/void", headers=clinic.as_role("front_desk"), json={"reason": "duplicate"})
    assert clinic.client.get(url, headers=injector).status_code == 404
