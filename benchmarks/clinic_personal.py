"""Benchmark: the clinic's personal prediction (``GET /api/patients/{id}/prediction``) against
the library call alone, in the same run.

Work: a stored patient (Botox 20 U glabella, severe baseline) with no follow-up, one (day 14)
and two (days 14 and 60, back at baseline: the SMC fallback runs), through the whole app
(TestClient, SQLite in a temporary folder, bearer sign-in): uncached (the history is built from
the record and personalized at 200 twins) and cached (the record unchanged). Peer:
``personalize(history, particles=API_PARTICLES)`` on the same history, no HTTP or database.
Then the due list with every patient followed, cold and warm.

Target (issue 14): an API call under 0.5 s.

    .venv/bin/python benchmarks/clinic_personal.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from neuromod.clinic.app import create_app
from neuromod.clinic.db import Account, Patient, make_engine, make_sessions, upgrade
from neuromod.clinic.personal import clear_cache, stored_history
from neuromod.clinic.security import hash_password
from neuromod.clinic.settings import Settings, sqlite_url
from neuromod.schemas.history import parse_history
from neuromod.schemas.plan import parse_plan
from neuromod.trials.personal import API_PARTICLES, personalize

TARGET_S = 0.5
TREATED = datetime.combine(date.today() - timedelta(days=100), datetime.min.time(), tzinfo=UTC).replace(hour=10)
CASES = {"no follow-up": [], "day 14": [(14, 0, 0)], "days 14 + 60 (back at baseline)": [(14, 0, 0), (60, 3, 1)]}


def seconds(work, repeats: int, before=lambda: None) -> list[float]:
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def treated_patient(client: TestClient, headers: dict, lot_id: int, follow_ups: list, name: str) -> int:
    def post(url: str, body: dict) -> dict:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    pid = post("/api/patients", {"given_name": name, "family_name": "Bench", "birth_date": "1979-03-14",
                                 "sex": "female"})["id"]
    post(f"/api/patients/{pid}/consultations", {"held_at": (TREATED - timedelta(days=1)).isoformat(), "concerns": "",
                                                "baseline": {"glabella": {"rest": 1, "contraction": 3}}})
    sites = [p.label for p in parse_plan({"product": "botox", "areas": {"glabella": 20}}).points()]
    session = post(f"/api/patients/{pid}/sessions", {"product": "botox", "lot_id": lot_id, "given_at": TREATED.isoformat(),
                                                     "injections": [{"site": s, "units": 4} for s in sites]})
    for day, contraction, rest in follow_ups:
        post(f"/api/patients/{pid}/follow-ups", {"session_id": session["id"],
                                                 "seen_at": (TREATED + timedelta(days=day)).isoformat(),
                                                 "observed": {"glabella": {"rest": rest, "contraction": contraction}}})
    return pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(database_url=sqlite_url(Path(tempfile.mkdtemp()) / "bench.sqlite"), warm_up=False)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with make_sessions(engine)() as db:
        db.add(Account(username="bench", full_name="Bench", role="admin", password_hash=hash_password("bench-password-1")))
        db.commit()
    print(f"clinic personal prediction, {args.repeats} repeats, {API_PARTICLES} twins")
    worst = 0.0
    with TestClient(create_app(settings)) as client:
        token = client.post("/api/auth/sign-in", json={"username": "bench", "password": "bench-password-1"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        lot = client.post("/api/lots", headers=headers, json={
            "product": "botox", "lot_number": "B1", "expires_on": (date.today() + timedelta(days=200)).isoformat(),
            "vials": 10, "vial_units": 100, "saline_ml": 2.5}).json()
        patients = {case: treated_patient(client, headers, lot["id"], follow_ups, f"P{i}")
                    for i, (case, follow_ups) in enumerate(CASES.items())}
        client.get(f"/api/patients/{patients['day 14']}/prediction", headers=headers)  # compile and warm
        for case, pid in patients.items():
            with make_sessions(engine)() as db:
                history = parse_history(stored_history(db, db.get(Patient, pid)).document)
            peer = seconds(lambda: personalize(history, particles=API_PARTICLES), args.repeats)
            url = f"/api/patients/{pid}/prediction"
            cold = seconds(lambda: client.get(url, headers=headers), args.repeats, before=clear_cache)
            warm = seconds(lambda: client.get(url, headers=headers), args.repeats)
            worst = max(worst, max(cold))
            print(f"  {case:32s} personalize alone {statistics.median(peer):6.3f} s   API uncached "
                  f"{statistics.median(cold):6.3f} s (max {max(cold):.3f}, {statistics.median(cold) / statistics.median(peer):.2f}x)"
                  f"   cached {1000 * statistics.median(warm):5.1f} ms")
        due = lambda: client.get("/api/reminders/due", params={"before": "2100-01-01"}, headers=headers)  # noqa: E731
        cold_due = seconds(due, 1, before=clear_cache)
        warm_due = seconds(due, args.repeats)
        print(f"  due list, {len(patients)} patients: cold {cold_due[0]:.3f} s, warm {1000 * statistics.median(warm_due):.1f} ms")
    print(f"  target API call < {TARGET_S:g} s: {'met' if worst < TARGET_S else 'MISSED'} (worst uncached {worst:.3f} s)")


if __name__ == "__main__":
    main()
