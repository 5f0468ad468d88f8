"""Benchmark: the clinic API against the same work done by calling the library directly.

1. ``POST /api/predict`` with the label glabella plan (Botox 20 U): latency p50/p95 of one
   client, then 20 concurrent clients (p50/p95, requests/s); peer: ``simulate(plan).to_json()``
   called directly in the same process, one at a time.
2. Recording a treatment session (rules, lot draw, audit) with 20 concurrent clients on SQLite:
   p50/p95 and sessions/s; peer: the same :func:`neuromod.clinic.rules.record_session` in one
   transaction per session, 20 threads with their own database sessions, no HTTP.

Targets (issue 12): prediction p95 < 50 ms for a label plan (one client), session write
p95 < 100 ms on SQLite (20 clients). The server is ``neuromod serve`` in a subprocess.

    .venv/bin/python benchmarks/api.py [--requests 60] [--sessions 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from threadpoolctl import threadpool_limits

from neuromod.clinic.db import Account, make_engine, make_sessions, upgrade
from neuromod.clinic.deps import writing
from neuromod.clinic.records import create
from neuromod.clinic.rules import record_session
from neuromod.clinic.security import Actor, hash_password
from neuromod.clinic.settings import sqlite_url
from neuromod.model.simulate import simulate
from neuromod.schemas.clinic import SessionFields
from neuromod.schemas.plan import parse_plan

CLIENTS = 20
PLAN = {"product": "botox", "areas": {"glabella": 20}}
SITES = ["glabella_procerus", "glabella_corrugator_medial_left", "glabella_corrugator_medial_right",
         "glabella_corrugator_mid_left", "glabella_corrugator_mid_right"]
GIVEN_AT = datetime.now(timezone.utc) - timedelta(days=1)
PASSWORD = "benchmark-password"


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(seconds)
    return 1000 * statistics.median(ordered), 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def concurrent(calls: list, clients: int = CLIENTS) -> tuple[list[float], float]:
    """Run the calls on ``clients`` threads; (latencies, wall seconds)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(timed, calls))
    return latencies, time.perf_counter() - start


def seed(url: str, patients: int, lot_units: int) -> tuple[int, list[int], int]:
    """An injector, ``patients`` patients and one lot; (injector id, patient ids, lot id)."""
    from neuromod.clinic.db import Lot, Patient

    engine = make_engine(url)
    upgrade(engine)
    with make_sessions(engine)() as db, writing(db):
        injector = Account(username="bench", full_name="Bench Injector", role="injector",
                           password_hash=hash_password(PASSWORD))
        db.add(injector)
        db.flush()
        actor = Actor(injector.id, "bench", "Bench Injector", "injector", 0, "", False)
        ids = [create(db, actor, Patient(given_name=f"B{i}", family_name="Bench", birth_date=datetime(1980, 1, 1).date(),
                                         sex="female", smoking="never", sun_exposure="moderate",
                                         phone=None, email=None, address=None)).id for i in range(patients)]
        lot = create(db, actor, Lot(product="botox", lot_number="BENCH", expires_on=GIVEN_AT.date() + timedelta(days=90),
                                    vials=lot_units // 100, vial_units=100, units_received=lot_units,
                                    units_left=lot_units, reconstituted_at=None, saline_ml=2.5))
        result = injector.id, ids, lot.id
    engine.dispose()
    return result


def session_body(lot_id: int) -> dict:
    return {"product": "botox", "lot_id": lot_id, "given_at": GIVEN_AT.isoformat(),
            "injections": [{"site": s, "units": 4} for s in SITES]}


def start_server(url: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "neuromod.cli", "serve", "--db", url, "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="prediction requests per measurement")
    parser.add_argument("--sessions", type=int, default=200, help="sessions recorded per measurement")
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")  # as in the server: one BLAS thread per request
    folder = Path(tempfile.mkdtemp(prefix="neuromod-bench-"))
    api_url, lib_url = sqlite_url(folder / "api.sqlite"), sqlite_url(folder / "library.sqlite")
    _, api_patients, api_lot = seed(api_url, args.sessions, 100 * ((20 * args.sessions) // 100 + 1))
    injector_id, lib_patients, lib_lot = seed(lib_url, args.sessions, 100 * ((20 * args.sessions) // 100 + 1))

    plan = parse_plan(PLAN)
    simulate(plan, 180).to_json()
    library = [timed(lambda: simulate(plan, 180).to_json()) for _ in range(args.requests)]
    lib50, lib95 = percentiles(library)

    process, base = start_server(api_url)
    try:
        token = httpx.post(f"{base}/api/auth/sign-in", json={"username": "bench", "password": PASSWORD},
                           timeout=60).json()["token"]
        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)
            return local.client

        def predict() -> None:
            response = client().post("/api/predict", json=PLAN)
            assert response.status_code == 200, response.text

        predict()
        one = [timed(predict) for _ in range(args.requests)]
        one50, one95 = percentiles(one)
        many, many_wall = concurrent([predict] * args.requests)
        many50, many95 = percentiles(many)

        def api_session(patient_id: int):
            def call() -> None:
                response = client().post(f"/api/patients/{patient_id}/sessions", json=session_body(api_lot))
                assert response.status_code == 201, response.text
            return call

        writes, writes_wall = concurrent([api_session(p) for p in api_patients])
        w50, w95 = percentiles(writes)
    finally:
        process.terminate()
        process.wait(timeout=30)

    engine = make_engine(lib_url)
    sessions = make_sessions(engine)
    actor = Actor(injector_id, "bench", "Bench Injector", "injector", 0, "", False)

    def library_session(patient_id: int):
        def call() -> None:
            with sessions() as db, writing(db):
                record_session(db, actor, patient_id, SessionFields.model_validate(session_body(lib_lot)))
        return call

    direct, direct_wall = concurrent([library_session(p) for p in lib_patients])
    d50, d95 = percentiles(direct)
    engine.dispose()

    print(f"predict (label glabella plan, 180 days), {args.requests} requests")
    print(f"  library simulate().to_json(), one at a time: p50 {lib50:.1f} ms  p95 {lib95:.1f} ms  "
          f"{args.requests / sum(library):.1f} calls/s")
    print(f"  POST /api/predict, 1 client:   p50 {one50:.1f} ms  p95 {one95:.1f} ms  "
          f"{args.requests / sum(one):.1f} req/s  (p95 x{one95 / lib95:.2f} the library)")
    print(f"  POST /api/predict, {CLIENTS} clients: p50 {many50:.1f} ms  p95 {many95:.1f} ms  "
          f"{args.requests / many_wall:.1f} req/s  (throughput x{args.requests / many_wall * sum(library) / args.requests:.2f} "
          f"the library one at a time)")
    print(f"record a session (rules + lot draw + audit, SQLite), {args.sessions} sessions, {CLIENTS} clients")
    print(f"  library record_session, {CLIENTS} threads: p50 {d50:.1f} ms  p95 {d95:.1f} ms  "
          f"{args.sessions / direct_wall:.1f} sessions/s")
    print(f"  POST /api/patients/{{id}}/sessions:  p50 {w50:.1f} ms  p95 {w95:.1f} ms  "
          f"{args.sessions / writes_wall:.1f} sessions/s  (p95 x{w95 / d95:.2f} the library)")
    print(f"targets: predict p95 < 50 ms (1 client): {'met' if one95 < 50 else 'MISSED'} ({one95:.1f} ms); "
          f"session write p95 < 100 ms ({CLIENTS} clients): {'met' if w95 < 100 else 'MISSED'} ({w95:.1f} ms)")
    print(f"RESULT predict_p95_ms={one95:.1f} predict_20_clients_p95_ms={many95:.1f} "
          f"predict_req_per_s={args.requests / many_wall:.1f} session_p95_ms={w95:.1f} "
          f"sessions_per_s={args.sessions / writes_wall:.1f} cores={os.cpu_count()}")


if __name__ == "__main__":
    main()
