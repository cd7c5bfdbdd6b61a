"""Every AWS call the deployed code makes, as IAM sees it: the input of the static IAM check (tests/test_iam.py).

Two tables, meant to be extended by whoever adds an AWS call:

- `OPERATIONS`: what one adapter operation calls, as `Need`s (IAM action, a concrete example of the resource written
  over the stack with `${Logical.Attr}` / `${Logical}` placeholders, and the request's condition keys).
- `FUNCTIONS`: the operations each function performs (its handler, its logic, the libraries it calls).

Adding an AWS call: add (or reuse) an operation, list it under every function that makes it, then run
`pytest tests/test_iam.py`: it fails while the template does not grant it (missing) and when the template grants
something no listed call needs (unused). Example, index reading the campaign parameters:

    OPERATIONS["campaigns.read_one"] = [Need("ssm:GetParameter", PARAMETERS + "/campaigns/travel", why="...")]
    FUNCTIONS["IndexFunction"].append("campaigns.read_one")

What Lambda, Step Functions, S3, SNS, Rekognition and EventBridge Scheduler do on the system's behalf (polling the
queues, the state machine's tasks, bucket notifications, completions, the schedule) is derived from the template
itself by `cliplake_cli.iam_check`, not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Need:
    """One (action, resource) an AWS call requires, with the condition keys its request carries."""

    action: str
    resource: str  # e.g. "${MediaBucket.Arn}/media-raw/video/dropin/c/20250101_000000/clip.mp4"; "*" when IAM has none
    context: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    why: str = ""  # the call site


# Example resources, concrete as a request names them.
RAW = "${MediaBucket.Arn}/media-raw/video/dropin/adhoc/20250101_000000/clip.webm"
RENDITION = "${MediaBucket.Arn}/media-processed/video/dropin/adhoc/20250101_000000/clip_h264.mp4"
JOB_RESULT = "${MediaBucket.Arn}/media-processed/video/dropin/adhoc/20250101_000000/clip.rekognition/labels.json"
SUMMARY = "${MediaBucket.Arn}/media-processed/video/dropin/adhoc/20250101_000000/clip_labels.json"
PART = "${MediaBucket.Arn}/media-processed/video/dropin/adhoc/20250101_000000/clip_h264.parts/v0003.mp4"
TABLE_ROWS = "${MediaBucket.Arn}/media-processed/tables/videos/source=dropin/campaign=adhoc/v0123.json"
PLAN_ITEMS = "${MediaBucket.Arn}/batches/batch-20250101-000000-abcd/items.json"  # lake.plan_items_key
BUCKET = "${MediaBucket.Arn}"
CATALOG = "${CatalogTable.Arn}"
IDEMPOTENCY = "${IdempotencyTable.Arn}"
MACHINE = "${BatchStateMachine}"  # a task token is authorised against the state machine that issued it
PARAMETERS = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ParameterPrefix}"


def _missing_object(prefix: str, key: str) -> Need:
    """S3 answers a request for a missing key with 404 only to a caller allowed to list the bucket (else 403)."""
    return Need("s3:ListBucket", BUCKET, {"s3:prefix": key}, why=f"a missing object under {prefix} reads as 404")


def _ddb(*actions: str, table: str = CATALOG, why: str) -> list[Need]:
    return [Need(f"dynamodb:{a}", table, why=why) for a in actions]


def _rekognition(verb: str) -> list[Need]:
    return [
        Need(f"rekognition:{verb}{api}", "*", why=f"Rekognition.{verb.lower()}")
        for api in ("LabelDetection", "ContentModeration", "SegmentDetection", "TextDetection")
    ]


OPERATIONS: dict[str, list[Need]] = {
    # --- powertools idempotency (DynamoDBPersistenceLayer: in progress, completed, deleted on error, read on clash)
    "idempotency": _ddb("PutItem", "GetItem", "UpdateItem", "DeleteItem", table=IDEMPOTENCY, why="powertools"),
    # --- the lake (adapters/s3.py Lake, boto3's transfer manager)
    "lake.read_raw": [
        Need("s3:GetObject", RAW, why="Lake.head/download/presigned_url (HeadObject, GetObject, ranged GET)"),
        _missing_object("media-raw/", RAW.split("}/", 1)[1]),
    ],
    "lake.read_processed": [
        Need("s3:GetObject", SUMMARY, why="Lake.head/get_json/get_text of a rendition, result or summary"),
        _missing_object("media-processed/", SUMMARY.split("}/", 1)[1]),
    ],
    "lake.upload_rendition": [
        Need("s3:PutObject", RENDITION, why="Lake.upload (multipart: Create/UploadPart/Complete)"),
        Need("s3:AbortMultipartUpload", RENDITION, why="Lake.upload: a failed multipart upload is aborted"),
    ],
    "lake.write_processed": [Need("s3:PutObject", JOB_RESULT, why="Lake.put_json (results, summary)")],
    "lake.write_parts": [
        Need("s3:PutObject", PART, why="segments.run_part: Lake.upload of a part (multipart)"),
        Need("s3:PutObjectTagging", PART, why="segments.run_part: the part's tags (PART_TAGS, for the lifecycle rule)"),
        Need("s3:AbortMultipartUpload", PART, why="Lake.upload: a failed multipart upload is aborted"),
    ],
    "lake.delete_parts": [Need("s3:DeleteObject", PART, why="segments.run_join: Lake.delete of the joined parts")],
    "lake.write_plan": [Need("s3:PutObject", PLAN_ITEMS, why="batches.plan: Lake.put_json of the planned items")],
    "lake.write_tables": [Need("s3:PutObject", TABLE_ROWS, why="tables.write_summary_rows/write_failed_rows")],
    "lake.ingest_raw": [
        Need("s3:PutObject", RAW, why="ingest_candidate: Lake.upload_stream (multipart)"),
        Need("s3:AbortMultipartUpload", RAW, why="ingest_candidate: a failed or unverified stream is aborted"),
        Need("s3:DeleteObject", RAW, why="ingest_candidate: Lake.delete_object of a small unverified object"),
    ],
    # --- the catalog (adapters/catalog.py; TransactWriteItems is authorised per item as Put/Update/...)
    "catalog.video": _ddb("GetItem", "UpdateItem", why="get_video, set_status, mark_failed, job slots, tasks"),
    "catalog.register": _ddb("PutItem", "UpdateItem", why="register_video, record_jobs (transactions)"),
    "catalog.index": _ddb("GetItem", "UpdateItem", "BatchWriteItem", why="index_summary, _write_labels"),
    "catalog.batches": _ddb("GetItem", "PutItem", "UpdateItem", why="get/put/update_batch, get_video, get_task"),
    "catalog.batch_items": [
        *_ddb("BatchWriteItem", "Query", why="Batches.put_items/record_outcomes (BatchWriteItem), all_items (Query)"),
        *_ddb("BatchGetItem", why="batches.summary.outcomes: Videos.get_many, Tasks.get_many"),
    ],
    "catalog.dedupe": _ddb("GetItem", why="seen, seen_hash (planning)"),
    "catalog.transcodes": _ddb("GetItem", "PutItem", "UpdateItem", why="adapters/transcodes.Transcodes (TRANSCODE#)"),
    "catalog.tasks": _ddb("PutItem", "UpdateItem", why="put_task, mark_ingested, finish/reopen_task"),
    # --- task tokens (adapters/stepfunctions.py; completion.complete_video)
    "tokens.fail": [Need("states:SendTaskFailure", MACHINE, why="TaskTokens.fail")],
    "tokens.heartbeat": [Need("states:SendTaskHeartbeat", MACHINE, why="TaskTokens.heartbeat (heartbeat_video)")],
    "tokens.succeed": [Need("states:SendTaskSuccess", MACHINE, why="TaskTokens.succeed")],
    # --- Rekognition Video (adapters/rekognition.py; no resource-level permissions)
    "rekognition.start": [
        *_rekognition("Start"),
        Need(
            "iam:PassRole",
            "${RekognitionPublishRole.Arn}",
            {"iam:passedtoservice": "rekognition.amazonaws.com"},
            why="Start*: NotificationChannel.RoleArn",
        ),
        # Rekognition reads the video with the caller's permissions
        Need("s3:GetObject", RAW, why="Start*: Video.S3Object (the original)"),
        Need("s3:GetObject", RENDITION, why="Start*: Video.S3Object (a rendition)"),
    ],
    "rekognition.get": _rekognition("Get"),
    "sns.announce_completion": [
        Need("sns:Publish", "${RekognitionTopic}", why="analyze._reconcile re-announces a finished job")
    ],
    "sqs.back_off": [
        Need("sqs:ChangeMessageVisibility", "${RawVideoQueue.Arn}", why="adapters/queue.back_off (URL from the ARN)")
    ],
    "sqs.segment_tasks": [
        Need("sqs:SendMessage", "${SegmentQueue.Arn}", why="adapters/transcodes.SegmentQueue.send (SendMessageBatch)")
    ],
    "sqs.segment_back_off": [
        Need(
            "sqs:ChangeMessageVisibility",
            "${SegmentQueue.Arn}",
            why="handlers/segment: back_off of a join at Rekognition's quota, of a task that failed on the network",
        )
    ],
    # --- campaigns and sources (campaigns.py through adapters/ssm.py; batches.plan.live_sources, adapters/secrets.py)
    "campaigns.read": [
        Need("ssm:GetParameter", PARAMETERS + "/campaigns/travel", why="load_campaign"),
        Need("ssm:GetParameter", PARAMETERS + "/current-campaign", why="get_current_campaign"),
        Need("ssm:GetParametersByPath", PARAMETERS + "/campaigns", why="list_campaigns (set_current_campaign)"),
    ],
    "campaigns.set_current": [Need("ssm:PutParameter", PARAMETERS + "/current-campaign", why="set_current_campaign")],
    "pixabay.key": [
        Need("secretsmanager:GetSecretValue", "${PixabaySecret}", why="batches.plan: Secrets.value of the Pixabay key")
    ],
}

FUNCTIONS: dict[str, list[str]] = {
    "AnalyzeFunction": [
        "idempotency",
        "lake.read_raw",
        "lake.read_processed",
        "lake.upload_rendition",
        "lake.write_tables",
        "catalog.video",
        "catalog.register",
        "rekognition.start",
        "rekognition.get",
        "sns.announce_completion",
        "sqs.back_off",
        "sqs.segment_tasks",
        "catalog.transcodes",
        "tokens.fail",
        "tokens.heartbeat",
    ],
    "SegmentFunction": [
        "lake.read_raw",
        "lake.read_processed",
        "lake.write_parts",
        "lake.upload_rendition",
        "lake.delete_parts",
        "lake.write_tables",
        "catalog.video",
        "catalog.register",
        "catalog.transcodes",
        "rekognition.start",
        "rekognition.get",
        "sns.announce_completion",
        "sqs.segment_tasks",
        "sqs.segment_back_off",
        "tokens.fail",
        "tokens.heartbeat",
    ],
    "FinalizeFunction": [
        "idempotency",
        "lake.read_processed",
        "lake.write_processed",
        "lake.write_tables",
        "catalog.video",
        "rekognition.get",
        "tokens.fail",
        "tokens.heartbeat",
    ],
    "IndexFunction": [
        "idempotency",
        "lake.read_processed",
        "lake.write_tables",
        "catalog.index",
        "catalog.video",
        "tokens.succeed",
    ],
    "BatchFunction": [
        "catalog.batches",
        "catalog.batch_items",
        "catalog.dedupe",
        "campaigns.read",
        "campaigns.set_current",
        "pixabay.key",
        "lake.write_plan",
        "tokens.succeed",
        "tokens.fail",
    ],
    "IngestFunction": ["catalog.tasks", "lake.read_raw", "lake.ingest_raw", "lake.write_tables", "tokens.fail"],
}
