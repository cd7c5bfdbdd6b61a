"""The CLI as a user meets it: defaults, exit codes, one-line errors, campaigns, drops recognised by content."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import uuid

import pytest
from batchkit import tiny_clips

from cliplake.services import get_services
from cliplake.settings import SourcesSettings, get_settings
from cliplake_cli.cli import build_parser, main

DROPPED = re.compile(r"^(v[0-9a-f]{20})  s3://", re.MULTILINE)


def _fresh() -> None:
    get_settings.cache_clear()
    get_services.cache_clear()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_a_help_text_and_shows_its_default():
    for name, sp in _subparsers(build_parser()).items():
        for action in sp._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"cliplake {name} {action.option_strings or action.dest}: no help text"
        text = sp.format_help()
        for action in sp._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS, ""):
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)


def test_env_without_a_local_cloud_says_how_to_start_one(tmp_path, capsys):
    assert main(["env", "--data", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cliplake up" in err


def _one_line_error(monkeypatch, capsys, argv: list[str]) -> str:
    """`cliplake <argv>` in the environment the test set up (restored after): exit 2, one line, no traceback."""
    _fresh()
    try:
        assert main(argv) == 2
    finally:
        monkeypatch.undo()
        _fresh()
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_an_unreachable_cloud_is_one_line_with_the_fix(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for var, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x")):
        monkeypatch.setenv(var, value)
    for var in ("CLIPLAKE_BUCKET", "CLIPLAKE_CATALOG_TABLE", "CLIPLAKE_BATCH_STATE_MACHINE_ARN"):
        monkeypatch.delenv(var, raising=False)
    err = _one_line_error(monkeypatch, capsys, ["videos"])
    assert "cannot reach the local cloud at http://127.0.0.1:9" in err and "cliplake up" in err


def test_a_shell_without_the_clouds_variables_is_one_line_with_the_fix(monkeypatch, capsys, tmp_path):
    """After `make demo` a new shell has no AWS variables: botocore's "You must specify a region." alone said
    nothing of the fix."""
    for var in [v for v in os.environ if v.startswith(("AWS_", "CLIPLAKE_"))]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    err = _one_line_error(monkeypatch, capsys, ["videos"])
    assert "no AWS region" in err and "cliplake up" in err and "cliplake env" in err


def test_videos_lists_every_source_by_default(cloud, lake, catalog, clips, capsys):
    _fresh()
    key = f"media-raw/video/wikimedia/cli/20260101_000000/{uuid.uuid4().hex[:6]}.mp4"
    lake.client.upload_file(str(clips["h264"]), lake.bucket, key)
    cloud.wait_idle(timeout=120)
    assert main(["videos", "--limit", "1000"]) == 0
    out = capsys.readouterr().out
    assert key.rsplit("/", 1)[1] in out and " wikimedia " in out
    assert main(["videos", "--source", "dropin", "--limit", "1000"]) == 0
    assert key.rsplit("/", 1)[1] not in capsys.readouterr().out


def test_unknown_campaign_is_refused_with_the_valid_ones(cloud, clips, capsys):
    _fresh()
    assert main(["drop", str(clips["h264"]), "--campaign", "natrue"]) == 2
    err = capsys.readouterr().err
    assert "no campaign 'natrue'" in err and "nature" in err and "travel" in err and "Traceback" not in err
    assert main(["run", "--campaign", "natrue"]) == 2
    assert "no campaign 'natrue'" in capsys.readouterr().err


def test_campaigns_list_show_add_and_set_current(cloud, capsys):
    _fresh()
    name = f"birds-{uuid.uuid4().hex[:4]}"
    assert main(["campaigns", "add", name, "--wikimedia", "bird song", "--pixabay", "birds"]) == 0
    assert main(["campaigns"]) == 0
    assert f"  {name}" in capsys.readouterr().out
    assert main(["campaigns", "show", name]) == 0
    assert json.loads(capsys.readouterr().out)["queries"] == {"wikimedia": ["bird song"], "pixabay": ["birds"]}
    previous = cloud.client("ssm").get_parameter(Name="/cliplake/current-campaign")["Parameter"]["Value"]
    try:
        assert main(["campaigns", "set-current", name]) == 0
        assert main(["campaigns", "list"]) == 0
        assert f"* {name}" in capsys.readouterr().out
    finally:
        main(["campaigns", "set-current", previous])
    assert main(["campaigns", "show", "nope"]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err


def test_the_same_bytes_dropped_twice_are_indexed_once(cloud, catalog, tmp_path, capsys):
    _fresh()
    [clip] = tiny_clips(tmp_path, 1)
    again = tmp_path / "renamed.mp4"
    shutil.copy(clip, again)
    assert main(["drop", str(clip), "--campaign", "nature", "--wait", "--timeout", "120"]) == 0
    [vid] = DROPPED.findall(capsys.readouterr().out)  # (the in-process functions print their metrics too)
    assert main(["drop", str(again), "--campaign", "nature"]) == 0
    captured = capsys.readouterr()
    assert not DROPPED.findall(captured.out) and f"already in the lake as {vid}" in captured.err
    assert main(["drop", str(again), "--campaign", "tech"]) == 0  # another campaign: a video of its own
    [other] = DROPPED.findall(capsys.readouterr().out)
    assert other != vid


def test_drop_wait_exits_1_when_a_video_failed(cloud, clips, capsys):
    _fresh()
    assert main(["drop", str(clips["corrupt"]), "--campaign", "nature", "--wait", "--timeout", "120", "--force"]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "1 of 1 video(s) failed" in captured.err


def test_show_of_a_missing_video_is_one_line(cloud, capsys):
    _fresh()
    assert main(["show", "vdoesnotexist"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cliplake videos" in err


@pytest.mark.parametrize("argv", [["videos", "--source", "nowhere"]])
def test_bad_choices_are_refused_by_argparse(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_a_batch_without_configured_sources_says_why_and_smoke_says_so(cloud, tmp_path, capsys):
    """The default deployment (no Pixabay key, no contact email for Wikimedia) and no bundled samples."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName=f"notifications-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.outputs["NotificationsTopicArn"], Protocol="sqs", Endpoint=arn)
    secrets = cloud.client("secretsmanager")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPLAKE_ASSETS_DIR", str(tmp_path))  # no samples.json: no offline source either
    mp.setenv("CLIPLAKE_CONTACT_EMAIL", "")
    _fresh()
    secret_id = get_settings(SourcesSettings).pixabay_secret_id
    previous = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"key": ""}))
    try:
        assert main(["run", "--batch-size", "1", "--wait", "--timeout", "120"]) == 1
        out = capsys.readouterr().out
        assert "Nothing was planned: no source configured" in out and "Pixabay key" in out
        [name] = re.findall(r"^(run-\S+)  arn:", out, re.MULTILINE)
        from cliplake.adapters.catalog import Catalog

        record = Catalog(cloud.outputs["CatalogTableName"], cloud.client("dynamodb")).get_batch(name)
        assert record["received"] == 0 and record["reason"].startswith("no source configured")
        subjects = []
        for _ in range(10):
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                envelope = json.loads(m["Body"])
                if name in envelope["Message"]:
                    subjects.append(envelope["Subject"])
                    assert "Nothing was planned: no source configured" in envelope["Message"]
            if subjects:
                break
        assert subjects and "nothing planned: no source configured" in subjects[0]
        [clip] = tiny_clips(tmp_path / "known", 1)  # a video the catalog has, for smoke to re-run
        assert main(["drop", str(clip), "--campaign", "nature", "--wait", "--timeout", "120"]) == 0
        capsys.readouterr()
        assert main(["smoke", "--timeout", "120"]) == 0
        out = capsys.readouterr().out
        assert "the batch planned nothing: no source configured" in out
        assert "re-running known video" in out and "FAIL" not in out
    finally:
        secrets.put_secret_value(SecretId=secret_id, SecretString=previous)
        mp.undo()
        _fresh()
