"""What the operator commands print: the hint to reach a local cloud, and the functions' log of `cliplake up`."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

from cliplake_localcloud.persistence import DataDir


def test_env_hint_names_a_directory_that_is_not_the_users_default(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPLAKE_DATA_DIR", str(tmp_path / "mine"))
    from cliplake_cli import console

    console = importlib.reload(console)  # the command starts: the user's default is read now
    try:
        assert console.env_hint(DataDir(tmp_path / "mine")) == console.ENV_HINT
        other = DataDir(tmp_path / "other")
        monkeypatch.setenv("CLIPLAKE_DATA_DIR", str(other.path))  # what a cloud started on it exports
        assert console.env_hint(other) == f'eval "$(cliplake env --data {other.path})"'
    finally:
        monkeypatch.undo()
        importlib.reload(console)


def test_the_functions_log_leaves_out_botocores_info_lines(tmp_path):
    log = tmp_path / "functions.log"
    code = (
        "import logging, sys, boto3\n"
        "from cliplake_cli.cli import _log_to\n"
        "_log_to(__import__('pathlib').Path(sys.argv[1]))\n"
        "boto3.client('sqs', region_name='us-east-1')\n"
        "logging.getLogger('cliplake.analyze').info('a stage line')\n"
    )
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    subprocess.run([sys.executable, "-c", code, str(log)], env=env, check=True, timeout=60)
    text = log.read_text()
    assert "a stage line" in text
    assert "botocore" not in text and "Found endpoint" not in text, text


def test_upload_progress_into_a_log_is_a_line_a_quarter(capsys):
    from cliplake_cli.cli import _Progress

    progress = _Progress("big.mp4", 400 * 8 << 20)  # capsys' stderr is no terminal, as a log or a pipe
    for _ in range(400):
        progress(8 << 20)  # boto3's 8 MiB parts
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"  uploading big.mp4: {pct:5.1f}%" for pct in (25, 50, 75, 100)]
