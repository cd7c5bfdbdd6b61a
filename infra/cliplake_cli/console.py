"""What the operator commands print, shared by `cli.py`, `batchops.py` and `demo.py` (which import it; it imports
none of them): one-line messages, a video's line, how to reach a local cloud from a shell."""

from __future__ import annotations

import shlex
import sys
from typing import Any

from cliplake_localcloud.persistence import DataDir, default_data_dir

ENV_HINT = 'eval "$(cliplake env)"'
# The user's default data directory, read when the command starts: a local cloud started in this process exports
# CLIPLAKE_DATA_DIR (for the functions), which would make every directory look like the default.
USER_DEFAULT_DATA_DIR = default_data_dir().expanduser().resolve()


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def env_hint(data: DataDir) -> str:
    """How a shell reaches the local cloud of `data` (`--data` unless it is the user's default directory)."""
    return (
        ENV_HINT
        if data.path.expanduser().resolve() == USER_DEFAULT_DATA_DIR
        else f'eval "$(cliplake env --data {shlex.quote(str(data.path))})"'
    )


def format_video_line(v: dict[str, Any]) -> str:
    labels = ", ".join(f"{t['name']} {t['max_confidence']:.0f}%" for t in v.get("top_labels", [])[:5])
    dur = v.get("duration_ms", 0) / 1000
    info = f"{dur:5.1f}s {v.get('width', 0)}x{v.get('height', 0)} {v.get('shots', 0)} shots"
    if v.get("status") == "FAILED":
        info = f"FAILED: {v.get('reason', '')}"
    return f"{v['video_id']}  {v.get('source', ''):9} {v.get('filename', '')[:40]:40}  {info}  {labels}"
