"""Benchmark: the engine's full analysis against a bare ffmpeg decode of the same file, in the same run.

    python -m cliplake_localcloud.rekognition.bench [--runs 5] [--moderation-every 2] [--objects-every 2]
        [--text-every 2] [--precision auto|int8|fp32]

For the bundled sample(s) and a 60 s 1280x720 30 fps H.264 clip made with ffmpeg (``testsrc2``, cached under
``<assets>/bench/``) it reports the median of ``runs`` timings of ``ffmpeg -i f -f null -`` and of
``Engine.analyse`` (models loaded beforehand), their ratio and both speeds as multiples of real time. For HD
files (at least 720 lines) it says whether the run met the targets: analysis within ``TARGET_RATIO`` x the bare
decode and at least ``TARGET_X_REALTIME`` x real time. The second depends on the machine as much as on the code: the
bare decode's own speed, printed beside it, bounds it.
Runs are interleaved so both see the same machine load; the 1-minute load average is printed alongside
because other processes on a 2-core machine move these numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import decode as dec
from .engine import Engine
from .models import default_assets_dir

SYNTH = "bench/synth_720p_60s.mp4"
TARGET_RATIO = 1.6  # analysis time / bare decode time, HD video on 2 cores (labels, moderation, objects, shots, text)
TARGET_X_REALTIME = 20.0  # seconds of HD video analysed per second, on 2 cores


def synthetic_clip(assets_dir: Path) -> Path:
    path = assets_dir / SYNTH
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part.mp4")
        subprocess.run(
            [dec.ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", "testsrc2=size=1280x720:rate=30:duration=60", "-c:v", "libx264", "-preset", "veryfast",
             "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(part)],
            check=True,
        )  # fmt: skip
        part.replace(path)
    return path


def bare_decode(path: Path, options: tuple[str, ...] = ()) -> float:
    t = time.perf_counter()
    cmd = [dec.ffmpeg(), "-hide_banner", "-loglevel", "error", *options, "-i", str(path), "-f", "null", "-"]
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def measure(engine: Engine, path: Path, runs: int) -> dict:
    """Medians of ``runs`` interleaved timings: the bare decode, the analysis and, where the analysis decodes
    with options (``Plan.decode_options``), a bare decode with those options too."""
    info = dec.probe(path)
    options = dec.Plan.for_video(info).decode_options
    decodes, analyses, same = [], [], []
    for _ in range(runs):
        decodes.append(bare_decode(path))
        if options:
            same.append(bare_decode(path, options))
        t = time.perf_counter()
        engine.analyse(path)
        analyses.append(time.perf_counter() - t)
    d, a = statistics.median(decodes), statistics.median(analyses)
    per_run = [x / y for x, y in zip(analyses, decodes, strict=True)]
    return {
        "file": path.name,
        "video": f"{info.width}x{info.height} {float(info.fps):.2f} fps {info.duration_ms / 1000:.1f} s",
        "decode_s": round(d, 3),
        "analysis_s": round(a, 3),
        "ratio": round(a / d, 2),
        "ratio_range": (round(min(per_run), 2), round(max(per_run), 2)),
        "decode_options": " ".join(options),
        "ratio_same_options": round(a / statistics.median(same), 2) if same else None,
        "x_realtime": round(info.duration_ms / 1000 / a, 1),
        "decode_x_realtime": round(info.duration_ms / 1000 / d, 1),
        "hd": info.height >= 720,
        "load_1min": round(os.getloadavg()[0], 2),
    }


def verdict(row: dict) -> str:
    """Whether an HD row met both targets, e.g. ``targets: ratio <= 1.5 ok, >= 20x real time MISSED``."""
    if not row["hd"]:
        return ""
    ratio = "ok" if row["ratio"] <= TARGET_RATIO else "MISSED"
    speed = "ok" if row["x_realtime"] >= TARGET_X_REALTIME else "MISSED"
    return f"targets: ratio <= {TARGET_RATIO} {ratio}, >= {TARGET_X_REALTIME:.0f}x real time {speed}"


_ENGINE: Engine | None = None


def default_engine() -> Engine:
    """One engine with the default sampling, shared by the speed and the quality runs of `make bench`."""
    global _ENGINE  # noqa: PLW0603
    if _ENGINE is None:
        _ENGINE = Engine(default_assets_dir())
    return _ENGINE


def run(report: Callable[[str], None] = print, runs: int = 5, engine: Engine | None = None) -> list[dict]:
    """Measure every sample; ``report`` receives one human-readable line per file. Returns the rows."""
    assets = default_assets_dir()
    engine = engine or default_engine()
    t = time.perf_counter()
    engine.label_catalogue()  # loads every model
    report(
        f"models loaded in {time.perf_counter() - t:.2f} s ({engine.label_version}, {engine.moderation_version}); "
        f"{os.cpu_count()} CPUs; median of {runs} runs"
    )
    files = [p for p in (assets / "samples").glob("*.mp4")] + [synthetic_clip(assets)]
    rows = []
    for path in sorted(files):
        row = measure(engine, path, runs)
        rows.append(row)
        report(
            f"{row['file']:<24} {row['video']:<28} decode {row['decode_s']:6.2f} s  analysis "
            f"{row['analysis_s']:6.2f} s  ratio {row['ratio']:4.2f}  {row['x_realtime']:5.1f}x real time  "
            f"(load {row['load_1min']})"
        )
        notes = [
            f"ratio per run {row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f}",
            f"bare decode {row['decode_x_realtime']:.1f}x real time",
        ]
        if row["ratio_same_options"]:
            notes.append(f"analysis / bare decode with {row['decode_options']}: {row['ratio_same_options']:.2f}")
        report(f"{'':<24} " + "; ".join(notes))
        if targets := verdict(row):
            report(f"{'':<24} {targets}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--moderation-every", type=int, default=2, help="samples between moderation runs")
    parser.add_argument("--objects-every", type=int, default=4, help="samples between object runs (0: off)")
    parser.add_argument("--text-every", type=int, default=4, help="samples between text screens (0: off)")
    parser.add_argument("--precision", choices=("auto", "int8", "fp32"), default="auto")
    args = parser.parse_args()
    engine = Engine(
        moderation_every=args.moderation_every,
        objects_every=args.objects_every,
        text_every=args.text_every,
        precision=args.precision,
    )
    print(
        f"sampling: labels every sample, moderation every {args.moderation_every}, objects every "
        f"{args.objects_every}, text every {args.text_every}"
    )
    run(print, args.runs, engine)


if __name__ == "__main__":
    main()
