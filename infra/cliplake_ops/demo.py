"""`cliplake demo`: the whole choreography on one machine, offline, on the bundled sample videos.

local cloud up (moto from the template, dispatcher, Rekognition-compatible endpoint) → each sample put under
`media-raw/video/samples/demo/<ts>/` with its attribution → analyze → Rekognition → SNS → SQS → finalize →
`_labels.json` → index → the catalog, followed live and summarised at the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.s3 import Lake
from cliplake.contracts import Attribution
from cliplake.lake import batch_timestamp, raw_key
from cliplake.settings import get_settings
from cliplake_ops.assets import ensure_assets
from cliplake_ops.cli import print_report, say, wait_for_videos


def sample_attributions(assets: Path) -> list[tuple[Path, Attribution]]:
    out = []
    for s in json.loads((assets / "samples.json").read_text()):
        path = assets / s["file"]
        if not path.exists():
            continue
        out.append(
            (
                path,
                Attribution(
                    title=s["title"],
                    author=s["author"],
                    author_url=s["author_url"],
                    source="samples",
                    source_url=s["source_url"],
                    licence=s["licence"],
                    licence_url=s["licence_url"],
                ),
            )
        )
    return out


def put_samples(lake: Lake, samples: list[tuple[Path, Attribution]], campaign: str = "demo") -> list[str]:
    ts = batch_timestamp()
    keys = []
    for path, attribution in samples:
        key = raw_key("samples", campaign, path.name, ts)
        lake.upload(path, key, "video/mp4" if path.suffix == ".mp4" else "video/x-msvideo", attribution.to_metadata())
        say(f"  put s3://{lake.bucket}/{key}  ({path.stat().st_size / 1e6:.1f} MB, {attribution.licence})")
        keys.append(key)
    return keys


def run_demo(timeout_s: float = 600) -> int:
    from cliplake_ops.localcloud.cloud import LocalCloud

    assets = ensure_assets()
    samples = sample_attributions(assets)
    if not samples:
        raise SystemExit("cliplake demo: no sample videos found; run `make setup`")
    say("cliplake demo: starting the local cloud (moto server + stack from infra/template.yaml)")
    started = time.monotonic()
    with LocalCloud(port=0) as cloud:
        say(f"  local cloud ready on {cloud.endpoint_url} in {time.monotonic() - started:.1f} s")
        get_settings.cache_clear()
        settings = get_settings()
        lake, catalog = Lake(settings.bucket), Catalog(settings.catalog_table)
        say(f"cliplake demo: dropping {len(samples)} sample video(s) into the lake")
        t0 = time.monotonic()
        keys = put_samples(lake, samples)
        videos = wait_for_videos(catalog, keys, timeout_s)
        cloud.wait_idle(timeout=60)
        say(f"  all videos through the pipeline in {time.monotonic() - t0:.1f} s")
        print_report(videos, catalog.stats())
        for v in videos:
            if v.get("summary_key"):
                print(f"  summary: s3://{settings.bucket}/{v['summary_key']}")
    failed = [v for v in videos if v.get("status") != "INDEXED"]
    return 1 if failed else 0
