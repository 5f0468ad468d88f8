"""Photo upload through the API: consent required, metadata stripped, audit records the stored image."""

from __future__ import annotations

import hashlib
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from neuromod.clinic.app import create_app
from neuromod.clinic.db import make_engine, make_sessions, upgrade
from neuromod.clinic.demo import DEMO_ACCOUNTS, seed_demo
from neuromod.clinic.settings import Settings, sqlite_url
from neuromod.clinic.web.photos import STORED_SIDE, clean_image

GPS_IFD = 0x8825
MAKE, ORIENTATION = 0x010F, 0x0112


def camera_jpeg(width: int = 3000, height: int = 2000, orientation: int = 6) -> bytes:
    """A JPEG as a phone writes it: camera make, GPS position and a rotation flag in EXIF."""
    image = Image.new("RGB", (width, height), (200, 160, 140))
    image.paste((30, 30, 30), (0, 0, width // 2, height // 4))  # a dark band at the top-left
    exif = Image.Exif()
    exif[MAKE] = "PhoneCam"
    exif[ORIENTATION] = orientation  # 6: the viewer must rotate 90 degrees clockwise
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), comment=b"patient: Jane Doe")
    return out.getvalue()


def test_clean_image_drops_metadata_and_turns_upright():
    original = camera_jpeg()
    assert Image.open(io.BytesIO(original)).getexif()[MAKE] == "PhoneCam"
    cleaned, width, height = clean_image(original)
    stored = Image.open(io.BytesIO(cleaned))
    assert not stored.getexif() and "exif" not in stored.info and "comment" not in stored.info
    assert b"PhoneCam" not in cleaned and b"Jane Doe" not in cleaned
    assert (width, height) == stored.size and max(stored.size) == STORED_SIDE
    assert stored.height > stored.width  # orientation 6 applied: landscape sensor, portrait photo


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROMOD_PHOTO_DIR", raising=False)
    url = sqlite_url(tmp_path / "clinic.sqlite")
    engine = make_engine(url)
    upgrade(engine)
    seed_demo(make_sessions(engine))
    engine.dispose()
    with TestClient(create_app(Settings(database_url=url, warm_up=False))) as client:
        injector = next(a for a in DEMO_ACCOUNTS if a.role == "injector")
        token = client.post("/api/auth/sign-in", json={"username": injector.username,
                                                       "password": injector.password}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        client.cookies.clear()  # a bearer client: no session cookie (so no CSRF token needed)
        yield client


def test_upload_needs_photo_consent_then_stores_a_clean_image(client, tmp_path):
    consultation = client.get("/api/patients/1/consultations").json()[0]
    upload = {"view": "frontal_frown", "consultation_id": str(consultation["id"])}
    files = {"file": ("IMG_0001.jpg", camera_jpeg(), "image/jpeg")}
    refused = client.post("/api/patients/1/photos", data=upload, files=files)
    assert refused.status_code == 422 and refused.json()["detail"].startswith("consent: no granted photo consent")
    assert not (tmp_path / "photos").exists() or not any((tmp_path / "photos").rglob("*.jpg"))

    assert client.post("/api/patients/1/consents", json={"kind": "photo", "version": "2026-01",
                                                         "signed_at": "2026-01-05T10:00:00Z"}).status_code == 201
    stored = client.post("/api/patients/1/photos", data=upload, files=files)
    assert stored.status_code == 201, stored.text
    record = stored.json()
    assert record["stage"] == "before" and record["view"] == "frontal_frown"
    image = client.get(f"/api/patients/1/photos/{record['id']}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert not Image.open(io.BytesIO(image.content)).getexif() and b"PhoneCam" not in image.content
    assert hashlib.sha256(image.content).hexdigest() == record["sha256"]
    assert client.get("/api/audit", params={"entity": "photos"}).status_code == 403  # injectors: no audit log
    assert [p["id"] for p in client.get("/api/patients/1/photos").json()] == [record["id"]]
    admin = next(a for a in DEMO_ACCOUNTS if a.role == "admin")
    token = client.post("/api/auth/sign-in", json={"username": admin.username, "password": admin.password}).json()
    client.cookies.clear()
    entries = client.get("/api/audit", params={"entity": "photos"},
                         headers={"Authorization": f"Bearer {token['token']}"}).json()
    assert [e["after"]["sha256"] for e in entries] == [record["sha256"]]  # the stored image, hash-chained


def test_only_clinicians_upload_or_see_photos(client):
    files = {"file": ("x.jpg", camera_jpeg(40, 30), "image/jpeg")}
    form = {"view": "frontal_rest", "consultation_id": "1"}
    bearer = client.headers.pop("Authorization")
    assert client.post("/api/patients/1/photos", data=form, files=files).status_code == 401
    assert client.get("/api/patients/1/photos").status_code == 401
    front_desk = next(a for a in DEMO_ACCOUNTS if a.role == "front_desk")
    token = client.post("/api/auth/sign-in", json={"username": front_desk.username,
                                                   "password": front_desk.password}).json()["token"]
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {token}"}
    refused = client.post("/api/patients/1/photos", data=form, files=files, headers=headers)
    assert refused.status_code == 403 and "clinical.write" in refused.json()["detail"]
    assert client.get("/api/patients/1/photos", headers=headers).status_code == 403
    client.headers["Authorization"] = bearer


def test_bad_uploads_answer_422_naming_the_field(client):
    client.post("/api/patients/1/consents", json={"kind": "photo", "version": "2026-01",
                                                  "signed_at": "2026-01-05T10:00:00Z"})
    consultation = client.get("/api/patients/1/consultations").json()[0]["id"]
    cases = [
        ({"view": "frontal_frown", "consultation_id": str(consultation)}, b"not an image", "file: not a readable image"),
        ({"view": "selfie", "consultation_id": str(consultation)}, camera_jpeg(40, 30), "view"),
        ({"view": "frontal_frown"}, camera_jpeg(40, 30), "consultation_id/follow_up_id: give exactly one"),
    ]
    for form, content, expected in cases:
        answer = client.post("/api/patients/1/photos", data=form, files={"file": ("x.jpg", content, "image/jpeg")})
        assert answer.status_code == 422, answer.text
        assert expected in answer.json()["detail"], answer.json()
    assert client.get("/api/patients/1/photos").json() == []
    assert client.get("/api/patients/1/photos/" + "0" * 32).status_code == 404
    assert client.get("/api/patients/1/photos/..%2F..%2Fclinic.sqlite").status_code in (404, 422)
