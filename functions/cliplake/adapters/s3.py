"""Small S3 adapter: the only module of the stages that speaks to S3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

#: Presigned URLs that work in every region: SigV4 (botocore still presigns S3 URLs with SigV2 by default, which the
#: regions opened since 2014 reject) on the bucket's regional virtual-hosted endpoint (the global one answers for a
#: young bucket outside us-east-1 with a redirect to another host, which a signature covering the host does not
#: survive). At a custom endpoint given as an IP address (the local cloud), botocore keeps path-style URLs.
S3_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})


MiB = 1024 * 1024
DEFAULT_CHUNK_BYTES = 8 * MiB
DEFAULT_CONCURRENCY = 2


def s3_client(**kwargs: Any) -> Any:
    return boto3.client("s3", config=S3_CONFIG, **kwargs)


def transfer_config(
    chunk_bytes: int = DEFAULT_CHUNK_BYTES, max_concurrency: int = DEFAULT_CONCURRENCY
) -> TransferConfig:
    """A `TransferConfig` whose memory use is bounded by a few chunks, whatever the object size."""
    config = TransferConfig(
        multipart_threshold=chunk_bytes,
        multipart_chunksize=chunk_bytes,
        max_concurrency=max_concurrency,
        io_chunksize=256 * 1024,
        use_threads=True,
    )
    # Parts read from a non-seekable stream wait in memory for an upload thread; bound how many.
    config.max_in_memory_upload_chunks = max_concurrency
    return config


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    metadata: dict[str, str]
    version_id: str | None
    content_type: str


def _not_found(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


class Lake:
    """The media bucket."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.client = client or s3_client()

    def head(self, key: str) -> ObjectInfo | None:
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _not_found(err):
                return None
            raise
        return ObjectInfo(
            key=key,
            etag=r["ETag"].strip('"'),
            size=r["ContentLength"],
            metadata=r.get("Metadata", {}),
            version_id=r.get("VersionId"),
            content_type=r.get("ContentType", ""),
        )

    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.bucket, key, str(path))
        return path

    def upload(
        self,
        path: Path,
        key: str,
        content_type: str,
        metadata: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        extra: dict[str, Any] = {"ContentType": content_type}
        if metadata:
            extra["Metadata"] = metadata
        if tags:  # lifecycle rules can filter on tags
            extra["Tagging"] = urlencode(tags)
        self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra)

    def upload_stream(
        self,
        stream: BinaryIO,
        key: str,
        content_type: str = "",
        metadata: dict[str, str] | None = None,
        config: TransferConfig | None = None,
    ) -> None:
        """Stream a file object of unknown length into `key`, read in `config`'s parts (`transfer_config()`): a
        multipart upload above its threshold, aborted when a read raises (no object appears, no S3 event). The
        botocore error of a failed transfer has the read's exception as its cause."""
        extra: dict[str, Any] = {"Metadata": metadata or {}}
        if content_type:
            extra["ContentType"] = content_type
        self.client.upload_fileobj(stream, self.bucket, key, ExtraArgs=extra, Config=config or transfer_config())

    def delete_object(self, key: str) -> None:
        """Delete one key (an object that went up in one piece and must be taken back)."""
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete(self, keys: list[str]) -> None:
        """Delete `keys` (current versions; a versioned bucket keeps the old ones until its lifecycle)."""
        for i in range(0, len(keys), 1000):
            objects = [{"Key": k} for k in keys[i : i + 1000]]
            r = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            if r.get("Errors"):
                raise RuntimeError(f"{len(r['Errors'])} objects not deleted: {r['Errors'][0].get('Message')}")

    def put_json(self, key: str, data: Any) -> str:
        body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        r = self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json"
        )
        return r["ETag"].strip('"')

    def get_text(self, key: str) -> str | None:
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _not_found(err):
                return None
            raise
        return r["Body"].read().decode("utf-8")

    def get_json(self, key: str) -> Any | None:
        text = self.get_text(key)
        return None if text is None else json.loads(text)

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A GET URL for `key`, valid `expires_s` seconds without credentials. It carries a signature: never log it.
        Made with `S3_CONFIG`'s client (SigV4, regional host) unless the caller brought another one."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
        )
