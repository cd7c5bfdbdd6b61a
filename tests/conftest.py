"""Shared fixtures: one local cloud per test session, clips made with ffmpeg at test time."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.s3 import Lake
from cliplake.media import ffmpeg_exe
from cliplake.services import get_services
from cliplake.settings import get_settings


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


CAPTION = "Lantern Parade"  # burned into the H.264 clip: on-screen text for the text job and text search


def lavfi_cuts(
    sources: list[str],
    seconds: float,
    size: str = "320x240",
    rate: int = 25,
    photo: Path | None = None,
    caption: tuple[str, Path] | None = None,
) -> list[str]:
    """ffmpeg arguments for clips of `sources`, then of a still `photo` if given, joined with hard cuts every
    `seconds`; `caption` (text, font file) is burned in at the bottom throughout."""
    inputs: list[str] = []
    for src in sources:
        inputs += ["-f", "lavfi", "-t", str(seconds), "-i", f"{src}=size={size}:rate={rate}"]
    joined = "".join(f"[{i}:v]" for i in range(len(sources)))
    scale_photo = ""
    if photo is not None:
        inputs += ["-loop", "1", "-framerate", str(rate), "-t", str(seconds), "-i", str(photo)]
        scale_photo = f"[{len(sources)}:v]scale={size.replace('x', ':')},setsar=1[photo];"
        joined += "[photo]"
    n = len(sources) + (photo is not None)
    graph = f"{scale_photo}{joined}concat=n={n}:v=1:a=0[v]"
    if caption is not None:
        text, font = caption
        graph = graph[: -len("[v]")] + (
            f"[c];[c]drawtext=fontfile={font}:text='{text}':fontsize=26:fontcolor=white:box=1:boxcolor=black@0.7:"
            "boxborderw=6:x=(w-tw)/2:y=h-44[v]"
        )
    return [*inputs, "-filter_complex", graph, "-map", "[v]"]


def pytest_collection_modifyitems(items):
    """Tests on the shared local cloud run last. moto's backends are process-global: a test using `mock_aws`
    or a moto server of its own resets them, which would wipe the deployed stack under the cloud's feet."""
    items.sort(key=lambda item: "cloud" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def cloud():
    """The local cloud (moto server with the stack from infra/template.yaml, dispatcher, Rekognition)."""
    from cliplake_localcloud.cloud import LocalCloud

    with LocalCloud(port=0) as c:
        get_settings.cache_clear()
        get_services.cache_clear()
        yield c
    get_settings.cache_clear()
    get_services.cache_clear()


@pytest.fixture(scope="session")
def lake(cloud) -> Lake:
    return Lake(cloud.outputs["MediaBucketName"], cloud.client("s3"))


@pytest.fixture(scope="session")
def catalog(cloud) -> Catalog:
    return Catalog(cloud.outputs["CatalogTableName"], cloud.client("dynamodb"))


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Short real clips: H.264 MP4 with two hard cuts (two test patterns, then a photo of a cat, so that the
    video has labels the model is sure of), a VP9 WebM with an odd name, a corrupt file."""
    from cliplake_cli.assets import assets_dir

    cat = assets_dir() / "photos/chelsea.png"
    if not cat.exists():
        pytest.skip("set-up assets missing: run `python -m cliplake_cli.assets`")
    d = tmp_path_factory.mktemp("clips")
    h264 = d / "cuts.mp4"
    caption = (CAPTION, assets_dir() / "fonts/DejaVuSans.ttf")
    ffmpeg(*lavfi_cuts(["testsrc2", "smptebars"], 1.6, photo=cat, caption=caption), "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(h264))  # fmt: skip
    webm = d / "clip ü+1 b.webm"
    ffmpeg(*lavfi_cuts(["testsrc2", "rgbtestsrc"], 1.2, size="322x242"), "-c:v", "libvpx-vp9", "-deadline",
           "realtime", "-cpu-used", "8", "-b:v", "300k", str(webm))  # fmt: skip
    corrupt = d / "broken.mp4"
    corrupt.write_bytes(h264.read_bytes()[:64] + bytes(range(256)) * 64)
    return {"h264": h264, "webm": webm, "corrupt": corrupt}
