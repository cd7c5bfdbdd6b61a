"""`cliplake sql` and `cliplake reindex`: the lake's tables from the command line.

    cliplake sql "SELECT campaign, count(*) FROM labels GROUP BY campaign" [--json | --csv] [--direct]
    cliplake reindex [--campaign NAME]      re-index every summary in the lake (catalog and tables), and write
                                            the rows of the videos that failed

The tables are derived from the lake: delete `media-processed/tables/` and `cliplake reindex` writes them again.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cliplake.services import Services
    from cliplake_cli.stack import StackConfig


# ----------------------------------------------------------------------------------------------------- sql
def cmd_sql(args: argparse.Namespace, resolve: Callable[[str], StackConfig]) -> int:
    from cliplake_cli.sql import LakeSQL, QueryError, render_csv, render_json, render_table

    config = resolve(args.stack)
    started = time.perf_counter()
    lake_sql = LakeSQL(config.bucket, direct=args.direct)
    try:
        result = lake_sql.query(args.query)
    except QueryError as err:
        raise SystemExit(f"cliplake sql: {err}") from None
    finally:
        lake_sql.close()
    render = render_json if args.json else render_csv if args.csv else render_table
    sys.stdout.write(render(result).rstrip("\n") + "\n")
    s = result.stats
    print(
        f"{time.perf_counter() - started:.2f} s; read {s.bytes_read:,} bytes of {s.partitions_opened} partition "
        f"file(s); {s.objects_fetched} object(s) fetched, {s.listed} listed",
        file=sys.stderr,
    )
    return 0


# ------------------------------------------------------------------------------------------------- reindex
def reindex(svc: Services, campaign: str | None = None) -> Counter[str]:
    """Walk `media-raw/`: index each video's summary again (catalog and tables; unchanged rows are rewritten as
    they were), and write the table rows of each video the catalog holds as FAILED. Returns outcome counts."""
    # imported here: `cliplake sql` should not pay for the stages' imports (sources, powertools) at every start
    from cliplake.contracts import ObjectRef, VideoStatus
    from cliplake.index import index_summary
    from cliplake.lake import RAW_PREFIX, LakeKeyError, parse_raw_key
    from cliplake.tables import write_failed_rows

    counts: Counter[str] = Counter()
    client, bucket = svc.lake.client, svc.lake.bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RAW_PREFIX):
        for obj in page.get("Contents", []):
            try:
                raw = parse_raw_key(obj["Key"])
            except LakeKeyError:
                continue
            if campaign and raw.campaign != campaign:
                continue
            info = svc.lake.head(raw.summary_key)
            if info is not None:
                result = index_summary(svc, ObjectRef(bucket=bucket, key=raw.summary_key, etag=info.etag))
                counts[result.outcome] += 1
                continue
            video = svc.catalog.get_video(raw.video_id)
            if video and video.get("status") == VideoStatus.FAILED.value:
                write_failed_rows(svc.lake, video, video.get("reason", ""))
                counts["failed"] += 1
            else:
                counts["not summarised yet"] += 1
    return counts


def cmd_reindex(args: argparse.Namespace, resolve: Callable[[str], StackConfig]) -> int:
    from cliplake.services import build_services

    counts = reindex(build_services(resolve(args.stack).function_settings()), args.campaign)
    print(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "nothing in the lake")
    return 0


# ---------------------------------------------------------------------------------------------- the parser
def register(sub: Any, resolve: Callable[[str], StackConfig], default_stack: str) -> None:
    """Add `sql`, `reindex` and `status` to the `cliplake` parser (`resolve` reads the stack's resources)."""
    sql = sub.add_parser("sql", help="SQL over the lake's tables (DuckDB; videos, labels)")
    sql.add_argument("query", help='one SELECT, e.g. "SELECT campaign, count(*) FROM videos GROUP BY 1"')
    fmt = sql.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    fmt.add_argument("--csv", action="store_true", help="print the rows as CSV")
    sql.add_argument("--direct", action="store_true", help="read S3 with DuckDB's httpfs (no cache; slower)")
    sql.set_defaults(fn=lambda a: cmd_sql(a, resolve))

    rx = sub.add_parser("reindex", help="re-index the lake: catalog and tables from the summaries")
    rx.add_argument("--campaign", help="only this campaign")
    rx.set_defaults(fn=lambda a: cmd_reindex(a, resolve))
    for sp in (sql, rx):
        sp.add_argument("--stack", default=default_stack, help="CloudFormation stack to read resources from")

    from cliplake_cli import status

    status.register(sub, resolve, default_stack)
