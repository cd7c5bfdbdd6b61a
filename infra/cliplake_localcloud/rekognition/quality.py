"""Label quality, measured: the evaluation set of ``evaluation.json`` through the engine, one table row a clip.

    python -m cliplake_localcloud.rekognition.quality      # also part of `make bench`

Each clip (the bundled samples; 2 s clips made from still photos; 2 s synthetic ffmpeg patterns; a photo with
a caption burned in with ffmpeg ``drawtext`` and DejaVu Sans) is analysed by the engine, its labels read as
GetLabelDetection gives them (``MinConfidence`` 50, segments). Per clip: the expected labels found at >= 50 %,
the wrong ones at >= 50 % (any label neither expected nor acceptable, nor a parent of one), the expected text
lines read exactly, and for clips marked ``person_boxes`` the share of object samples with a Person box.
Targets (issue 15): every expected label found on the bundled samples, no label at all on a synthetic pattern,
Person boxes on >= 90 % of vtest's sampled frames.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import decode as dec
from .engine import Engine
from .models import default_assets_dir
from .objects import reported
from .results import label_items

EVALUATION = Path(__file__).with_name("evaluation.json")
SECONDS = 2


def make_clip(assets: Path, clip: dict) -> Path:
    """The clip's H.264 file (bundled samples as they are; photos, captions and patterns made once)."""
    if clip["kind"] == "sample":
        return assets / clip["source"]
    out = assets / "eval" / f"{clip['name']}.mp4"
    if out.exists():
        return out
    if clip["kind"] == "pattern":
        sep = ":" if "=" in clip["source"] else "="
        src = ["-f", "lavfi", "-i", f"{clip['source']}{sep}size=640x360:rate=25"]
        vf = "null"
    else:
        src = ["-loop", "1", "-i", str(assets / clip["source"])]
        vf = "scale=-2:720,format=yuv420p"
        if clip["kind"] == "caption":
            font = assets / "fonts/DejaVuSans.ttf"
            vf = (
                f"scale=1280:720,drawtext=fontfile={font}:text='{clip['caption']}':fontsize=56:fontcolor=white:"
                "box=1:boxcolor=black@0.6:boxborderw=12:x=(w-tw)/2:y=h-140"
            )
    part = out.with_suffix(".part.mp4")
    subprocess.run(
        [dec.ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *src, "-t", str(SECONDS), "-r", "25",
         "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(part)],
        check=True,
    )  # fmt: skip
    part.replace(out)
    return out


def evaluate(engine: Engine, assets: Path, clip: dict) -> dict:
    a = engine.analyse(make_clip(assets, clip))
    taxonomy = engine.taxonomy()
    items = label_items(a, taxonomy, {"MinConfidence": 50.0}, "TIMESTAMP", "SEGMENTS")
    best: dict[str, float] = {}
    for it in items:
        best[it["Label"]["Name"]] = max(best.get(it["Label"]["Name"], 0.0), it["Label"]["Confidence"])
    fine = set(clip["expected"]) | set(clip["acceptable"])
    for name in list(fine):
        if name in taxonomy.labels:
            fine |= set(taxonomy.labels[name].parents)
    found = [n for n in clip["expected"] if n in best]
    wrong = sorted((n for n in best if n not in fine), key=lambda n: -best[n])
    read = {line.text for _, lines in a.text for line in lines}
    row = {
        "clip": clip["name"],
        "kind": clip["kind"],
        "expected": len(clip["expected"]),
        "found": found,
        "missing": [n for n in clip["expected"] if n not in best],
        "wrong": [(n, round(best[n])) for n in wrong],
        "text_expected": len(clip.get("text", [])),
        "text_exact": [t for t in clip.get("text", []) if t in read],
        "text_read": sorted(read),
    }
    if clip.get("person_boxes"):
        with_person = sum(1 for _, ds in a.objects if any(d.coco == "person" for d in reported(ds)))
        row["person_box_frames"] = (with_person, len(a.objects))
    return row


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, each with ok / MISSED."""
    out = []
    samples = [r for r in rows if r["kind"] == "sample"]
    ok = all(not r["missing"] for r in samples)
    out.append(f"every expected label found on the bundled samples: {'ok' if ok else 'MISSED'}")
    patterns = [r for r in rows if r["kind"] == "pattern"]
    ok = all(not r["wrong"] for r in patterns)
    out.append(f"no label >= 50 % on a synthetic pattern: {'ok' if ok else 'MISSED'}")
    for r in rows:
        if "person_box_frames" in r:
            n, total = r["person_box_frames"]
            out.append(
                f"Person boxes on {r['clip']}: {n}/{total} sampled frames: {'ok' if n >= 0.9 * total else 'MISSED'}"
            )
    return out


def run(report=print, engine: Engine | None = None) -> list[dict]:
    assets = default_assets_dir()
    engine = engine or Engine(assets)
    clips = json.loads(EVALUATION.read_text())["clips"]
    rows = []
    report(f"{'clip':<16} {'expected found':<15} {'wrong >= 50 %':<40} {'text exact':<11} extra")
    for clip in clips:
        if clip["kind"] == "sample" and not (assets / clip["source"]).exists():
            report(f"{clip['name']:<16} (skipped: {clip['source']} missing)")
            continue
        row = evaluate(engine, assets, clip)
        rows.append(row)
        found = f"{len(row['found'])}/{row['expected']}"
        wrong = ", ".join(f"{n} {c}" for n, c in row["wrong"]) or "-"
        text = f"{len(row['text_exact'])}/{row['text_expected']}" if row["text_expected"] else "-"
        extra = []
        if row["missing"]:
            extra.append("missing " + ", ".join(row["missing"]))
        if "person_box_frames" in row:
            extra.append("Person boxes on {}/{} samples".format(*row["person_box_frames"]))
        if row["text_expected"] and not row["text_exact"]:
            extra.append(f"read {row['text_read']}")
        report(f"{row['clip']:<16} {found:<15} {wrong[:40]:<40} {text:<11} {'; '.join(extra)}")
    for line in targets(rows):
        report(f"  target: {line}")
    return rows


if __name__ == "__main__":
    run()
