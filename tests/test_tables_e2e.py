"""The lake's tables written by the pipeline on the local cloud: rows for every indexed and failed video, the same
bytes after re-indexing, rebuilt by `cliplake reindex` after deletion, and the same rows over httpfs."""

from __future__ import annotations

import pytest

from cliplake.lake import video_id_for
from cliplake.services import build_services
from cliplake.tables import TABLES_PREFIX, table_key
from cliplake_cli.cli import drop_files, wait_for_videos
from cliplake_cli.lakeops import reindex
from cliplake_cli.sql import LakeSQL, as_records
from cliplake_cli.stack import StackConfig

pytestmark = pytest.mark.e2e
CAMPAIGN = "sqltables"


def _objects(cloud, bucket: str) -> dict[str, bytes]:
    s3, out = cloud.client("s3"), {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=TABLES_PREFIX):
        for obj in page.get("Contents", []):
            if f"/campaign={CAMPAIGN}/" in obj["Key"]:
                out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


@pytest.fixture(scope="module")
def indexed(cloud, lake, catalog, clips):
    keys = drop_files(lake, [clips["h264"], clips["corrupt"]], campaign=CAMPAIGN)
    videos = {v["video_id"]: v for v in wait_for_videos(catalog, keys, timeout_s=240)}
    cloud.wait_idle(timeout=120)
    return {"keys": keys, "videos": videos}


def test_every_video_has_its_rows(indexed, lake, tmp_path):
    sql = LakeSQL(lake.bucket, lake.client, tmp_path)
    rows = as_records(
        sql.query(f"SELECT video_id, status, reason, label_segments FROM videos WHERE campaign = '{CAMPAIGN}'")
    )
    by_id = {r["video_id"]: r for r in rows}
    assert set(by_id) == set(indexed["videos"])
    for vid, video in indexed["videos"].items():
        assert by_id[vid]["status"] == video["status"]
        assert by_id[vid]["reason"] == video.get("reason", "")
    [failed] = [r for r in rows if r["status"] == "FAILED"]
    assert "not a readable media file" in failed["reason"]
    [ok] = [r for r in rows if r["status"] == "INDEXED"]
    labels = sql.query(f"SELECT count(*) FROM labels WHERE video_id = '{ok['video_id']}'").rows[0][0]
    assert labels == ok["label_segments"] > 0


def test_reindexing_rewrites_the_same_bytes_and_rebuilds_deleted_tables(indexed, cloud, lake, catalog):
    before = _objects(cloud, lake.bucket)
    assert len(before) == 4  # two videos, two tables
    svc = build_services(StackConfig(lake.bucket, catalog.table).function_settings())
    counts = reindex(svc, CAMPAIGN)
    assert counts["unchanged"] == 1 and counts["failed"] == 1
    assert _objects(cloud, lake.bucket) == before
    for key in before:
        lake.client.delete_object(Bucket=lake.bucket, Key=key)
    assert _objects(cloud, lake.bucket) == {}
    reindex(svc, CAMPAIGN)
    assert _objects(cloud, lake.bucket) == before
    cloud.wait_idle(timeout=60)  # table objects start no stage
    vid = video_id_for(next(k for k in indexed["keys"] if k.endswith("cuts.mp4")))
    assert catalog.get_video(vid)["status"] == "INDEXED"


def test_httpfs_reads_the_same_rows(indexed, lake, tmp_path):
    query = f"SELECT video_id, name, start_ms, end_ms FROM labels WHERE campaign = '{CAMPAIGN}' ORDER BY ALL"
    via_fsspec = LakeSQL(lake.bucket, lake.client, tmp_path).query(query)
    via_httpfs = LakeSQL(lake.bucket, lake.client, tmp_path, direct=True).query(query)
    assert via_httpfs.rows == via_fsspec.rows and via_fsspec.rows
    assert table_key("labels", "dropin", CAMPAIGN, via_fsspec.rows[0][0]) in _objects_keys(lake)


def _objects_keys(lake) -> set[str]:
    page = lake.client.list_objects_v2(Bucket=lake.bucket, Prefix=f"{TABLES_PREFIX}labels/source=dropin/")
    return {o["Key"] for o in page.get("Contents", [])}


def test_status_shows_the_dashboards_figures_from_the_local_cloud(indexed, cloud, catalog):
    from cliplake_cli.stack import load_config
    from cliplake_cli.status import QUEUES, collect, render

    status = collect(load_config(cloud.stack_name))
    assert [q.name for q in status.queues] == list(QUEUES)
    assert status.dead_letters == 0
    assert status.job_slots_in_use == catalog.jobs_in_flight() == 0  # every job ended: every slot released
    assert status.max_jobs_in_flight == int(cloud.resolver.parameters["MaxJobsInFlight"])
    dropin = next(v for v in status.videos if v.source == "dropin")
    assert dropin.model_dump() == {"source": "dropin", **{k: catalog.stats()["dropin"][c] for k, c in
                                   (("received", "raw"), ("indexed", "processed"), ("failed", "failed"))}}  # fmt: skip
    assert {"batch-failed", "job-slots-stuck"} <= set(status.alarms)
    text = render(status)
    assert "job slots: 0 in use of" in text and "dropin" in text


def test_the_local_cloud_has_the_templates_glue_tables_and_workgroup(cloud):
    glue = cloud.client("glue")
    database = cloud.outputs["LakeDatabase"]
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert set(tables) == {"videos", "labels"}
    location = tables["labels"]["StorageDescriptor"]["Location"]
    assert location == f"s3://{cloud.outputs['MediaBucketName']}/{TABLES_PREFIX}labels/"
    workgroup = cloud.client("athena").get_work_group(WorkGroup=cloud.outputs["LakeWorkGroupName"])["WorkGroup"]
    assert workgroup["Configuration"]["BytesScannedCutoffPerQuery"] > 0
    dashboards = cloud.client("cloudwatch").list_dashboards()["DashboardEntries"]
    assert cloud.outputs["OperationsDashboardName"] in {d["DashboardName"] for d in dashboards}
