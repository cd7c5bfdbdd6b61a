"""The data-lake layout (kept exactly as the seed defined it) and the ids derived from it.

    media-raw/<type>/<source>/<campaign>/<YYYYMMDD_HHMMSS>/<filename>
    media-processed/<type>/<source>/<campaign>/<YYYYMMDD_HHMMSS>/<name>_labels.json

Derived files live next to the summary, under the same prefix:
    <name>_h264.mp4                 the H.264 rendition analysed when the original is not H.264/MP4
    <name>_h264.parts/<part>        the parts of a rendition transcoded in segments, removed after the join
    <name>.rekognition/<job>.json   every result page of one Rekognition job, merged

A batch's planned items (the Distributed Map reads them from S3, a plan of 1,000 being over Step Functions' 256 KiB
payload quota):
    batches/<batch id>/items.json
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

RAW_PREFIX = "media-raw/"
PROCESSED_PREFIX = "media-processed/"
SUMMARY_SUFFIX = "_labels.json"
RENDITION_SUFFIX = "_h264.mp4"
PARTS_SUFFIX = "_h264.parts/"
BATCHES_PREFIX = "batches/"
SOURCES = ("wikimedia", "pixabay", "dropin", "samples")
# User metadata of a raw object a batch ingested: its batch, and the campaign's analyses (analyze intersects them
# with the stack's Features).
BATCH_ID_METADATA = "batch-id"
FEATURES_METADATA = "features"
TS_FORMAT = "%Y%m%d_%H%M%S"
_TS_RE = re.compile(r"^\d{8}_\d{6}$")
# Characters AWS advises against in object keys, and control characters; letters, spaces and `+` stay.
_UNSAFE_NAME_RE = re.compile(r"[\x00-\x1f\x7f{}^%`\[\]\"<>~#|:*?]+")


class LakeKeyError(ValueError):
    """A key that is not under the lake's raw prefix."""


@dataclass(frozen=True)
class RawKey:
    """A parsed `media-raw/...` key. Keys that do not follow the full layout still parse (ad-hoc drops)."""

    key: str
    media_type: str
    source: str
    campaign: str
    timestamp: str
    filename: str

    @property
    def relative(self) -> str:
        """The key below `media-raw/`, mirrored under `media-processed/`."""
        return self.key[len(RAW_PREFIX) :]

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.relative)[0]

    @property
    def summary_key(self) -> str:
        return f"{PROCESSED_PREFIX}{self.stem}{SUMMARY_SUFFIX}"

    @property
    def rendition_key(self) -> str:
        return f"{PROCESSED_PREFIX}{self.stem}{RENDITION_SUFFIX}"

    @property
    def parts_prefix(self) -> str:
        return f"{PROCESSED_PREFIX}{self.stem}{PARTS_SUFFIX}"

    def part_key(self, part: str) -> str:
        """A segment's part (`v00003.mp4`) or the audio track (`audio.m4a`) of a segmented transcode."""
        return f"{self.parts_prefix}{part}"

    def job_result_key(self, job: str) -> str:
        return f"{PROCESSED_PREFIX}{self.stem}.rekognition/{job}.json"

    @property
    def video_id(self) -> str:
        return video_id_for(self.key)


def decode_event_key(key: str) -> str:
    """S3 event keys are URL-encoded (`+` for space; moto encodes `/` too)."""
    return unquote_plus(key)


def video_id_for(raw_key: str) -> str:
    """A stable id for a raw object: short, ASCII, valid as a Rekognition JobTag and token prefix."""
    return "v" + hashlib.sha256(raw_key.encode("utf-8")).hexdigest()[:20]


def parse_raw_key(key: str) -> RawKey:
    if not key.startswith(RAW_PREFIX) or key.endswith("/"):
        raise LakeKeyError(f"not a raw media key: {key!r}")
    parts = key[len(RAW_PREFIX) :].split("/")
    filename = parts[-1]
    if len(parts) >= 5 and _TS_RE.match(parts[3]):
        media_type, source, campaign, ts = parts[0], parts[1], parts[2], parts[3]
    else:  # an ad-hoc drop somewhere under media-raw/: keep it, file it as a drop-in
        media_type = parts[0] if len(parts) > 1 else "video"
        source, campaign, ts = "dropin", "adhoc", ""
    return RawKey(key, media_type, source, campaign, ts, filename)


def summary_key_to_raw_stem(summary_key: str) -> str:
    if not (summary_key.startswith(PROCESSED_PREFIX) and summary_key.endswith(SUMMARY_SUFFIX)):
        raise LakeKeyError(f"not a summary key: {summary_key!r}")
    return summary_key[len(PROCESSED_PREFIX) : -len(SUMMARY_SUFFIX)]


def batch_timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(TS_FORMAT)


def plan_items_key(batch_id: str) -> str:
    """Where a batch's planned items are (a JSON array, the Map's ItemReader); the batch id is its execution name."""
    return f"{BATCHES_PREFIX}{batch_id}/items.json"


def safe_filename(name: str) -> str:
    """Keep a source's file name readable (unicode letters, spaces) but free of separators and controls."""
    name = posixpath.basename(name.replace("\\", "/")).strip()
    name = _UNSAFE_NAME_RE.sub("_", name)
    return name or "video"


def raw_key(source: str, campaign: str, filename: str, ts: str | None = None, media_type: str = "video") -> str:
    if source not in SOURCES:
        raise LakeKeyError(f"unknown source {source!r}")
    return f"{RAW_PREFIX}{media_type}/{source}/{campaign}/{ts or batch_timestamp()}/{safe_filename(filename)}"
