"""The lake's SQL tables (`cliplake.tables`) and DuckDB over them (`cliplake_cli.sql`), on moto in-process."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cliplake.adapters.s3 import Lake
from cliplake.contracts import Attribution, LabelSegment, Provenance, VideoMetadata, VideoSummary
from cliplake.lake import SUMMARY_SUFFIX, LakeKeyError, raw_key, summary_key_to_raw_stem, video_id_for
from cliplake.tables import TABLES_PREFIX, label_rows, table_key, write_failed_rows, write_summary_rows
from cliplake_cli.sql import LakeSQL, QueryError, as_records, render_csv, render_json, render_table

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "lake-tables-test"


def readme_queries() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## SQL over the lake", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def make_summary(
    source: str, campaign: str, name: str, when: datetime, labels: list[tuple[str, int, int]]
) -> VideoSummary:
    key = raw_key(source, campaign, name, when.strftime("%Y%m%d_%H%M%S"))
    return VideoSummary(
        video_id=video_id_for(key),
        bucket=BUCKET,
        raw_key=key,
        source=source,
        campaign=campaign,
        filename=name,
        video=VideoMetadata(codec="h264", duration_ms=10_000, width=320, height=240, frame_rate=25.0),
        labels=[
            LabelSegment(name=n, start_ms=a, end_ms=b, max_confidence=80 + i, parents=["Thing"], instances=1)
            for i, (n, a, b) in enumerate(labels)
        ],
        attribution=Attribution(title=name, author="someone", source=source, licence="CC BY 4.0"),
        credit_line=f'"{name}" by someone',
        provenance=Provenance(raw_key=key, analysed_key=key, summary_written_at=when.isoformat()),
    )


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _tables(s3) -> dict[str, tuple[str, bytes]]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=TABLES_PREFIX):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = (obj["ETag"], s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
    return out


def test_rows_land_in_the_videos_and_labels_partitions(s3):
    summary = make_summary("wikimedia", "nature", "falls.webm", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
                           [("Waterfall", 0, 4000), ("Tree", 1000, 2000), ("Waterfall", 6000, 9000)])  # fmt: skip
    keys = write_summary_rows(Lake(BUCKET, s3), summary, summary.raw_key)
    assert keys["videos"] == f"{TABLES_PREFIX}videos/source=wikimedia/campaign=nature/{summary.video_id}.json"
    assert keys["labels"] == table_key("labels", "wikimedia", "nature", summary.video_id)
    video = s3.get_object(Bucket=BUCKET, Key=keys["videos"])["Body"].read().decode().splitlines()
    labels = s3.get_object(Bucket=BUCKET, Key=keys["labels"])["Body"].read().decode().splitlines()
    assert len(video) == 1 and '"status":"INDEXED"' in video[0] and '"ingested_at":"2026-03-04 05:06:07"' in video[0]
    assert len(labels) == 3  # one row per segment, ordered by start
    assert [r.name for r in label_rows(summary)] == ["Waterfall", "Tree", "Waterfall"]
    assert '"source"' not in labels[0] and '"campaign"' not in labels[0]  # partition columns live in the key


def test_rewriting_a_videos_rows_changes_nothing(s3):
    lake = Lake(BUCKET, s3)
    summary = make_summary("pixabay", "travel", "city.mp4", datetime(2026, 5, 1, tzinfo=UTC), [("City", 0, 500)])
    write_summary_rows(lake, summary, summary.raw_key)
    first = _tables(s3)
    write_summary_rows(lake, summary, summary.raw_key)
    assert _tables(s3) == first
    assert len(first) == 2


def test_table_objects_never_look_like_summaries():
    key = table_key("labels", "dropin", "adhoc", video_id_for("media-raw/x.mp4"))
    assert not key.endswith(SUMMARY_SUFFIX)  # the bucket notification that starts index filters on this suffix
    with pytest.raises(LakeKeyError):
        summary_key_to_raw_stem(key)


def test_a_failed_video_has_a_row_with_its_reason_and_no_labels(s3, tmp_path):
    lake = Lake(BUCKET, s3)
    summary = make_summary("dropin", "e2e", "x.mp4", datetime(2026, 5, 1, tzinfo=UTC), [("Dog", 0, 500)])
    write_summary_rows(lake, summary, summary.raw_key)  # an earlier version was indexed
    video = {"video_id": summary.video_id, "source": "dropin", "campaign": "e2e", "raw_key": summary.raw_key,
             "filename": "x.mp4", "attribution": {"title": "x"}}  # fmt: skip
    write_failed_rows(lake, video, "not a readable media file: moov atom not found")
    sql = LakeSQL(BUCKET, s3, tmp_path)
    rows = as_records(sql.query("SELECT video_id, status, reason, campaign, title FROM videos"))
    assert rows == [{"video_id": summary.video_id, "status": "FAILED", "campaign": "e2e", "title": "x",
                     "reason": "not a readable media file: moov atom not found"}]  # fmt: skip
    assert sql.query("SELECT count(*) FROM labels").rows == [(0,)]


# ------------------------------------------------------------------------------------------ a small lake
def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def small_lake(s3):
    """Nature videos from two sources this month and last month, plus travel videos; Person and Car segments that
    overlap in some clips and not in others."""
    now = datetime.now(UTC).replace(microsecond=0)
    this_month, last_month = _month_start(now), _month_start(_month_start(now) - timedelta(days=1))
    spec = [  # source, campaign, name, month, labels
        ("wikimedia", "nature", "a.webm", this_month, [("Bird", 0, 900), ("Tree", 0, 500)]),
        ("wikimedia", "nature", "b.webm", this_month, [("Bird", 0, 900), ("Person", 0, 1000), ("Car", 500, 2000)]),
        ("wikimedia", "nature", "c.webm", last_month, [("Tree", 0, 500), ("Bird", 100, 200)]),
        ("pixabay", "nature", "d.mp4", this_month, [("Waterfall", 0, 3000), ("Person", 0, 1000), ("Car", 1000, 1500)]),
        ("pixabay", "nature", "e.mp4", last_month, [("Waterfall", 0, 3000), ("Tree", 0, 100)]),
        ("pixabay", "nature", "f.mp4", last_month, [("Tree", 0, 100)]),
        ("pixabay", "travel", "g.mp4", this_month, [("Person", 200, 400), ("Car", 300, 900), ("Car", 1000, 1200)]),
        ("wikimedia", "travel", "h.webm", last_month, [("Bird", 0, 10), ("Bird", 20, 30)]),
    ]
    lake, summaries = Lake(BUCKET, s3), []
    for source, campaign, name, month, labels in spec:
        summary = make_summary(source, campaign, name, month + timedelta(hours=1), labels)
        write_summary_rows(lake, summary, summary.raw_key)
        summaries.append(summary)
    return summaries, this_month


def _expected_growth(summaries, this_month):
    counts: dict[tuple[str, str], list[set[str]]] = {}
    for s in summaries:
        if s.campaign != "nature":
            continue
        for seg in s.labels:
            sets = counts.setdefault((s.source, seg.name), [set(), set()])
            sets[datetime.fromisoformat(s.provenance.summary_written_at) >= this_month].add(s.video_id)
    rows = [
        {"source": src, "name": name, "last_month": len(last), "this_month": len(this), "growth": len(this) - len(last)}
        for (src, name), (last, this) in counts.items()
        if len(this) > len(last)
    ]
    return sorted(rows, key=lambda r: (r["source"], -r["growth"], r["name"]))


def _expected_person_and_car(summaries):
    rows = []
    for s in summaries:
        for p in (x for x in s.labels if x.name == "Person"):
            for c in (x for x in s.labels if x.name == "Car"):
                if c.start_ms < p.end_ms and p.start_ms < c.end_ms:
                    rows.append({"source": s.source, "campaign": s.campaign, "video_id": s.video_id,
                                 "filename": s.filename, "from_ms": max(p.start_ms, c.start_ms),
                                 "to_ms": min(p.end_ms, c.end_ms)})  # fmt: skip
    return sorted(rows, key=lambda r: (r["video_id"], r["from_ms"]))


def test_duckdb_answers_the_readme_queries(small_lake, s3, tmp_path):
    summaries, this_month = small_lake
    growth, person_and_car = readme_queries()
    sql = LakeSQL(BUCKET, s3, tmp_path)
    got = as_records(sql.query(growth))
    assert got == _expected_growth(summaries, this_month)
    assert {r["name"] for r in got} >= {"Bird", "Person"}  # the lake was built so that something grew
    got = as_records(sql.query(person_and_car))
    assert got == _expected_person_and_car(summaries)
    assert {r["filename"] for r in got} == {"b.webm", "g.mp4"}  # d.mp4's Person and Car only touch at 1000 ms


def test_a_one_campaign_query_reads_only_its_partitions(small_lake, s3, tmp_path):
    sql = LakeSQL(BUCKET, s3, tmp_path)
    whole = sql.query("SELECT campaign, count(*) AS n FROM labels GROUP BY campaign ORDER BY campaign")
    travel = sql.query("SELECT count(*) AS n FROM labels WHERE campaign = 'travel'")
    travel_bytes = sum(
        len(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())
        for k in _tables(s3)
        if k.startswith(f"{TABLES_PREFIX}labels/") and "/campaign=travel/" in k
    )
    assert travel.stats.bytes_read == travel_bytes
    assert 0 < travel.stats.bytes_read < whole.stats.bytes_read
    assert travel.rows == [dict(whole.rows)["travel"]] or travel.rows == [(dict(whole.rows)["travel"],)]


def test_a_second_query_fetches_only_what_changed(small_lake, s3, tmp_path):
    summaries, _ = small_lake
    sql = LakeSQL(BUCKET, s3, tmp_path)
    first = sql.query("SELECT count(*) FROM labels")
    assert first.stats.objects_fetched == len(summaries)
    again = LakeSQL(BUCKET, s3, tmp_path).query("SELECT count(*) FROM labels")  # a new process, the same cache
    assert again.stats.objects_fetched == 0 and again.rows == first.rows
    changed = summaries[0].model_copy(update={"labels": summaries[0].labels[:1]})
    write_summary_rows(Lake(BUCKET, s3), changed, changed.raw_key)
    after = sql.query("SELECT count(*) FROM labels")
    assert after.stats.objects_fetched == 1
    assert after.rows == [(first.rows[0][0] - (len(summaries[0].labels) - 1),)]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "CREATE TABLE x AS SELECT 1",
        "SELECT 1; SELECT 2",
        "COPY labels TO '/tmp/labels.csv'",
        "SET enable_external_access = true",
        "ATTACH '/tmp/x.duckdb'",
    ],
)
def test_queries_are_read_only(s3, tmp_path, statement):
    with pytest.raises(QueryError):
        LakeSQL(BUCKET, s3, tmp_path).query(statement)


def test_outputs_table_json_and_csv(small_lake, s3, tmp_path):
    result = LakeSQL(BUCKET, s3, tmp_path).query(
        "SELECT campaign, count(*) AS videos, list(filename ORDER BY filename) AS files FROM videos "
        "GROUP BY campaign ORDER BY campaign"
    )
    table = render_table(result).splitlines()
    assert table[0].split() == ["campaign", "|", "videos", "|", "files"] and table[-1] == "(2 rows)"
    assert render_json(result).startswith("[") and '"campaign": "nature"' in render_json(result)
    csv_lines = render_csv(result).splitlines()
    assert csv_lines[0] == "campaign,videos,files" and csv_lines[1].startswith("nature,6,")


def _lake_on_disk(s3, root: Path) -> Path:
    """The bucket's objects as files at `<root>/s3/<bucket>/<key>`, as the local cloud's data directory keeps them."""
    disk = root / "s3" / BUCKET
    for key, (_, body) in _tables(s3).items():
        (disk / key).parent.mkdir(parents=True, exist_ok=True)
        (disk / key).write_bytes(body)
    return disk


def test_a_lake_on_disk_gives_the_same_rows_and_bytes_without_s3(small_lake, s3, tmp_path):
    summaries, _ = small_lake
    disk = _lake_on_disk(s3, tmp_path / "data")
    (disk / TABLES_PREFIX / "labels" / "source=dropin" / "campaign=x").mkdir(parents=True)
    (disk / TABLES_PREFIX / "labels" / "source=dropin" / "campaign=x" / ".v.json.ab12.link").write_text("junk\n")
    query = "SELECT campaign, name, count(*) AS n FROM labels GROUP BY ALL ORDER BY ALL"
    over_s3 = LakeSQL(BUCKET, s3, tmp_path / "c1", disk_root=None).query(query)
    on_disk = LakeSQL(BUCKET, None, tmp_path / "c2", disk_root=disk)
    local = on_disk.query(query)
    assert local.rows == over_s3.rows and local.stats.bytes_read == over_s3.stats.bytes_read
    assert local.stats.objects_fetched == 0 and local.stats.listed == len(summaries)  # a link being made: not read

    changed = summaries[0].model_copy(update={"labels": summaries[0].labels[:1]})
    write_summary_rows(Lake(BUCKET, s3), changed, changed.raw_key)
    _lake_on_disk(s3, tmp_path / "data")  # the new version's file replaces the old one
    after = on_disk.query("SELECT count(*) FROM labels")
    assert after.rows == [(sum(len(s.labels) for s in summaries) - (len(summaries[0].labels) - 1),)]


def test_the_lake_is_read_on_disk_only_from_the_cloud_the_shell_points_at(tmp_path, monkeypatch):
    from cliplake_cli.sql import local_lake_root

    data = tmp_path / "data"
    (data / "s3" / BUCKET).mkdir(parents=True)
    (data / "cloud.json").write_text('{"env": {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}}')
    monkeypatch.setenv("CLIPLAKE_DATA_DIR", str(data))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert local_lake_root(BUCKET) == data / "s3" / BUCKET
    assert local_lake_root("another-bucket") is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")  # another cloud: its lake is not this one
    assert local_lake_root(BUCKET) is None
    monkeypatch.delenv("CLIPLAKE_DATA_DIR")
    assert local_lake_root(BUCKET) is None
