"""The unit layer: the per-video stages (analyze, finalize, index) and their completion module, in seconds.

The test layers of cliplake:
    tests/unit/          stage logic and the catalog's stores, in-process: moto's in-memory DynamoDB and S3 behind
                         the real `Catalog` and `Lake` (conditional writes, transactions and indexes as DynamoDB has
                         them), stand-ins for Rekognition, task tokens, SNS and ffmpeg. No local cloud, no subprocess.
    tests/*.py, tests/sources/, tests/rekognition/
                         pure functions (contracts, lake keys, summaries, tables, template checks) and the
                         integration layer: the local cloud (moto server with the stack from infra/template.yaml, IAM
                         enforced, the dispatcher, the Rekognition emulator) running the whole pipeline end to end.
    tests/dashboard/     the dashboard's pages against the local cloud, and in a browser.

`pytest tests/unit --cov=cliplake.analyze --cov=cliplake.finalize --cov=cliplake.index` measures what the unit layer
alone covers of the three stages.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws
from unitkit import BUCKET, ROLE, TABLE, TOPIC, FakeMedia, FakeRekognition, FakeTokens, FakeTopic, Unit, catalog_table

import cliplake.analyze as analyze_module
from cliplake.adapters.catalog import Catalog
from cliplake.adapters.rekognition import Channel, CompletionTopic
from cliplake.adapters.s3 import Lake
from cliplake.services import Services, new_session
from cliplake.settings import AnalyzeSettings


@pytest.fixture
def unit(monkeypatch, tmp_path) -> Iterator[Unit]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    media = FakeMedia()
    monkeypatch.setattr(analyze_module, "probe", media.probe)
    monkeypatch.setattr(analyze_module, "transcode_to_h264", media.transcode)
    monkeypatch.setattr(analyze_module, "start_fan_out", media.start_fan_out)
    with mock_aws():
        session = new_session()  # botocore's service models loaded once for the whole layer
        ddb, s3 = session.client("dynamodb", region_name="us-east-1"), session.client("s3", region_name="us-east-1")
        catalog_table(ddb)
        s3.create_bucket(Bucket=BUCKET)
        # the analyze stage's settings hold all that finalize and index read too
        settings = AnalyzeSettings(bucket=BUCKET, catalog_table=TABLE, idempotency_table="idempotency",
                                   rekognition_topic_arn=TOPIC, rekognition_role_arn=ROLE,
                                   segment_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/segments",
                                   work_dir=str(tmp_path), max_jobs_in_flight=12)  # fmt: skip
        rekognition, tokens, topic = FakeRekognition(), FakeTokens(), FakeTopic()
        svc = Services(settings=settings, lake=Lake(BUCKET, s3), catalog=Catalog(TABLE, ddb),
                       rekognition=rekognition, channel=Channel(TOPIC, ROLE),
                       completions=CompletionTopic(TOPIC, topic), tokens=tokens)  # type: ignore[arg-type]  # fmt: skip
        yield Unit(svc, s3, rekognition, tokens, topic, media)
