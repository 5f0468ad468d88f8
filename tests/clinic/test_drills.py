"""Drills against a real server (``neuromod serve`` in a subprocess), on each backend:

- 20 clients record sessions against one lot at once: every acknowledged session is stored,
  the lot's stock is exact and never oversubscribed, the audit chain verifies;
- the server is killed with SIGKILL in the middle of concurrent writes and restarted: every
  acknowledged write is there, the database and the audit chain verify.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from neuromod.clinic.db import make_engine
from neuromod.clinic.server import verify_database
from tests.clinic.conftest import STAFF
from tests.clinic.test_clinic_day import TREATED

CLIENTS = 20
SITES = ["glabella_procerus", "glabella_corrugator_medial_left", "glabella_corrugator_medial_right",
         "glabella_corrugator_mid_left", "glabella_corrugator_mid_right"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``neuromod serve`` on a free port; ``start`` waits until it answers."""

    def __init__(self, url: str, log_path) -> None:
        self.url, self.port, self.log_path, self.process = url, free_port(), log_path, None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> "Server":
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "neuromod.cli", "serve", "--db", self.url,
                                         "--port", str(self.port)], stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, open(self.log_path).read()
            try:
                if httpx.get(f"{self.base}/openapi.json", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError(open(self.log_path).read())

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown handlers run
        self.process.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log.close()


@pytest.fixture
def server(settings, staff, tmp_path):
    running = Server(settings.database_url, tmp_path / "server.log").start()
    yield running
    running.stop()


def bearer(base: str, role: str) -> dict[str, str]:
    username, password = STAFF[role]
    response = httpx.post(f"{base}/api/auth/sign-in", json={"username": username, "password": password}, timeout=60)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_twenty_clients_share_one_lot(server):
    headers = bearer(server.base, "injector")
    with httpx.Client(base_url=server.base, headers=headers, timeout=120) as api:
        # 35 sessions of 20 units fit in 700 units: 20 clients x 2 sessions ask for 40
        lot = api.post("/api/lots", json={"product": "botox", "lot_number": "SHARED", "vials": 7, "vial_units": 100,
                                          "expires_on": (TREATED.date() + timedelta(days=100)).isoformat()}).json()
        patients = [api.post("/api/patients", json={"given_name": f"P{i}", "family_name": "Drill", "sex": "female",
                                                    "birth_date": "1980-01-01"}).json()["id"]
                    for i in range(2 * CLIENTS)]
    start = threading.Barrier(CLIENTS)
    outcomes: list[tuple[int, int, dict]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as api:
            start.wait()
            for patient in patients[2 * index: 2 * index + 2]:
                response = api.post(f"/api/patients/{patient}/sessions", json={
                    "product": "botox", "lot_id": lot["id"], "given_at": TREATED.isoformat(),
                    "injections": [{"site": s, "units": 4} for s in SITES]})
                with lock:
                    outcomes.append((patient, response.status_code, response.json()))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(outcomes) == 2 * CLIENTS
    accepted = [(p, body) for p, status, body in outcomes if status == 201]
    refused = [body for _, status, body in outcomes if status != 201]
    assert len(accepted) == 35, outcomes
    assert all("lot_id: lot SHARED has 0 units left; this session needs 20" == body["detail"] for body in refused)
    with httpx.Client(base_url=server.base, headers=headers, timeout=60) as api:
        assert api.get(f"/api/lots/{lot['id']}").json()["units_left"] == 0
        stored = {p: api.get(f"/api/patients/{p}/sessions").json() for p, _ in accepted}
        assert all(len(sessions) == 1 and sessions[0]["total_units"] == 20 for sessions in stored.values())
        recall = api.get(f"/api/lots/{lot['id']}/recall").json()
        assert sorted(p["patient_id"] for p in recall["patients"]) == sorted(p for p, _ in accepted)
    assert verify_database(server.url).ok


def test_sigkill_during_concurrent_writes_loses_no_acknowledged_write(server, tmp_path):
    headers = bearer(server.base, "front_desk")
    acknowledged: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(index: int) -> None:
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as api:
            n = 0
            while not stop.is_set():
                name = f"W{index}-{n}"
                try:
                    response = api.post("/api/patients", json={"given_name": name, "family_name": "Crash",
                                                               "sex": "male", "birth_date": "1975-05-05"})
                except httpx.HTTPError:
                    return  # the server is gone: this write was never acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged.append((response.json()["id"], name))
                n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert len(acknowledged) >= 40

    if server.url.startswith("sqlite"):
        engine = make_engine(server.url)
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        engine.dispose()
    restarted = Server(server.url, tmp_path / "restarted.log").start()
    try:
        headers = bearer(restarted.base, "front_desk")
        with httpx.Client(base_url=restarted.base, headers=headers, timeout=60) as api:
            stored = {p["id"]: p["given_name"] for p in api.get("/api/patients", params={"q": "crash", "limit": 500}).json()}
        missing = [(pid, name) for pid, name in acknowledged if stored.get(pid) != name]
        assert missing == []
        verification = verify_database(restarted.url)
        assert verification.ok, verification.problems
        assert verification.entries >= len(acknowledged)
    finally:
        restarted.stop()
