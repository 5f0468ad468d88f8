"""Clinical photos: uploaded against a consultation (before) or a follow-up (after), in a
standard view, with every piece of metadata stripped.

An upload is decoded by Pillow, turned upright (the EXIF orientation applied), re-encoded as
a fresh JPEG carrying no EXIF, GPS, XMP, ICC or comment block, and only then stored; nothing
of the original file is kept. Uploads need a granted photo consent on file. Each stored photo
is recorded in the audit log (hash-chained) with the SHA-256 of the stored image, so a
replaced file is detectable.

Storage: one folder per patient under the photo root (``NEUROMOD_PHOTO_DIR``; default: a
``photos`` folder beside a SQLite database, else ``var/photos``): ``<id>.jpg`` and its
``<id>.json`` metadata, each written to a temporary name and renamed (never half-written).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from PIL import Image, ImageOps, UnidentifiedImageError

from neuromod.clinic.settings import Settings

#: the standard views of facial-line photography (at rest and at maximum contraction of the
#: treated muscles: frown, brow raise, smile).
PhotoView = Literal["frontal_rest", "frontal_frown", "frontal_brow_raise", "oblique_left_smile",
                    "oblique_right_smile", "lateral_left", "lateral_right"]
PHOTO_VIEWS = get_args(PhotoView)
#: formats accepted from a camera or a browser.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
#: largest side accepted before decoding (pixels): refuses decompression bombs.
MAX_INPUT_SIDE = 8000
#: stored photos are scaled down to this longest side (pixels): enough for line grading.
STORED_SIDE = 2048
JPEG_QUALITY = 88


class PhotoError(ValueError):
    """An upload refused; the message names the field and what is allowed."""


@dataclass(frozen=True)
class PhotoRecord:
    """A stored photo's metadata (the image itself carries none)."""

    id: str
    patient_id: int
    view: str
    consultation_id: int | None
    follow_up_id: int | None
    taken_on: str
    uploaded_by: int
    uploaded_at: str
    width: int
    height: int
    sha256: str

    @property
    def stage(self) -> str:
        """``before`` (a consultation's photo) or ``after`` (a follow-up's)."""
        return "before" if self.consultation_id is not None else "after"

    def as_json(self) -> dict:
        return {**asdict(self), "stage": self.stage}


def photo_root(settings: Settings) -> Path:
    configured = os.environ.get("NEUROMOD_PHOTO_DIR")
    if configured:
        return Path(configured)
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url.removeprefix("sqlite:///")).parent / "photos"
    return Path("var") / "photos"


def clean_image(data: bytes) -> tuple[bytes, int, int]:
    """Decode, turn upright, scale to :data:`STORED_SIDE` and re-encode ``data`` as a JPEG with no
    metadata; the JPEG bytes and their size in pixels."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ACCEPTED_FORMATS:
                raise PhotoError(f"file: {probe.format or 'unknown'} images are not accepted; "
                                 f"allowed: {', '.join(sorted(ACCEPTED_FORMATS))}")
            if max(probe.size) > MAX_INPUT_SIDE:
                raise PhotoError(f"file: {probe.size[0]}x{probe.size[1]} pixels; at most {MAX_INPUT_SIDE} per side")
            upright = ImageOps.exif_transpose(probe)
            upright.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise PhotoError(f"file: not a readable image ({type(error).__name__})") from None
    pixels = upright.convert("RGB")
    pixels.thumbnail((STORED_SIDE, STORED_SIDE))
    clean = Image.new("RGB", pixels.size)  # a fresh image: no info dict, no EXIF, no ICC profile
    clean.paste(pixels)
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue(), clean.width, clean.height


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class PhotoStore:
    """The photo folders (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, patient_id: int) -> Path:
        return self.root / f"patient_{int(patient_id)}"

    def save(self, patient_id: int, image: bytes, width: int, height: int, view: str, consultation_id: int | None,
             follow_up_id: int | None, taken_on: str, uploaded_by: int, uploaded_at: datetime) -> PhotoRecord:
        folder = self._folder(patient_id)
        folder.mkdir(parents=True, exist_ok=True)
        record = PhotoRecord(uuid.uuid4().hex, patient_id, view, consultation_id, follow_up_id, taken_on, uploaded_by,
                             uploaded_at.isoformat(), width, height, hashlib.sha256(image).hexdigest())
        _write_atomically(folder / f"{record.id}.jpg", image)
        _write_atomically(folder / f"{record.id}.json", json.dumps(asdict(record)).encode("utf-8"))
        return record

    def discard(self, record: PhotoRecord) -> None:
        """Remove a photo whose recording failed (the audit entry was not committed)."""
        for suffix in (".json", ".jpg"):
            (self._folder(record.patient_id) / f"{record.id}{suffix}").unlink(missing_ok=True)

    def list(self, patient_id: int) -> list[PhotoRecord]:
        folder = self._folder(patient_id)
        if not folder.is_dir():
            return []
        records = [PhotoRecord(**json.loads(path.read_text("utf-8"))) for path in folder.glob("*.json")]
        return sorted(records, key=lambda r: (r.taken_on, r.uploaded_at))

    def image_path(self, patient_id: int, photo_id: str) -> Path | None:
        if not (len(photo_id) == 32 and all(c in "0123456789abcdef" for c in photo_id)):
            return None
        path = self._folder(patient_id) / f"{photo_id}.jpg"
        return path if path.is_file() else None
