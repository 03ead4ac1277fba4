"""Blobs in an S3 bucket: `<prefix>blobs/<alg>/<2 hex>/<hex>`; uploads in `<prefix>uploads/<id>/`.

An upload is an S3 multipart upload whose object is `uploads/<id>/data`, plus a tail object
(`uploads/<id>/tail-<n>`) holding the bytes that do not yet fill a part (S3 refuses parts under
5 MiB except the last), plus a small JSON `uploads/<id>/state` naming the parts and the tail.
Every replica reads the same state, so a chunked upload may hop between replicas request by
request; nothing lives in a process. The state object is written last in every change: it is
the commit point, so a replica that dies mid-append leaves the previous state whole, and the
orphans it made (a part past the recorded ones, an unnamed tail) are overwritten or swept away.

Completion assembles the parts (and the tail as the last part) into `data`, then copies that
server-side to the content-addressed key, so a blob key only ever appears whole.
"""

from __future__ import annotations

import functools
import inspect
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.config import Settings
from app.digests import CHUNK, parse
from app.errors import Invalid, TooLarge
from app.storage import Chunk, StorageUnavailable

MiB = 1024 * 1024
GiB = 1024 * MiB
# S3's limits: parts of at least 5 MiB (but the last), at most 10,000 of them; one CopyObject
# or UploadPartCopy moves at most 5 GiB.
MIN_PART = 5 * MiB
MAX_PARTS = 10_000
MAX_COPY = 5 * GiB
# The pending tail is spooled in memory up to this much, then on disk: never the whole blob.
SPILL_IN_MEMORY = 1 * MiB


@dataclass
class _State:
    size: int = 0
    mpu: str | None = None
    # [part number, etag, size] for each part uploaded, in order.
    parts: list[list[Any]] = field(default_factory=list)
    tail: str | None = None
    tail_size: int = 0
    # The parts and tail are completed into `data` (a verifying re-read needs a readable object).
    assembled: bool = False
    generation: int = 0


def _missing(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return code in {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def make_client(
    endpoint: str = "", region: str = "", access_key: str = "", secret_key: str = ""
) -> Any:
    """An S3 client; without keys, credentials come from the standard AWS chain."""
    config = Config(
        signature_version="s3v4",
        # Path-style works with every S3-compatible server; AWS itself picks its own style.
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"mode": "standard", "max_attempts": 5},
        # gunicorn threads share one client; let them all have a connection.
        max_pool_connections=64,
        # Newer botocore sends CRC checksums (and aws-chunked bodies) by default, which many
        # S3-compatible servers reject; digests are verified by us in any case.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    keys = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region or None,
        config=config,
        **(keys if access_key else {}),
    )


class S3Store:
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        redirect: bool = True,
        presign_ttl: int = 300,
        part_size: int = 8 * MiB,
        copy_limit: int = MAX_COPY,
        copy_part_size: int = 512 * MiB,
    ):
        if part_size < MIN_PART or copy_part_size < MIN_PART:
            raise ValueError("S3 parts must be at least 5 MiB")
        self.s3 = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.redirect = redirect
        self.presign_ttl = presign_ttl
        self.part_size = part_size
        # Below copy_limit one CopyObject moves a blob into place; above it, a multipart copy.
        self.copy_limit = min(copy_limit, MAX_COPY)
        self.copy_part_size = min(copy_part_size, MAX_COPY)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        if not settings.s3_bucket:
            raise ValueError("CARGOHOLD_S3_BUCKET is required when CARGOHOLD_STORAGE=s3")
        return cls(
            make_client(settings.s3_endpoint, settings.s3_region),
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            redirect=settings.s3_redirect,
            presign_ttl=settings.s3_presign_ttl,
        )

    # ---- keys -------------------------------------------------------------------------------

    def _blob_key(self, digest: str) -> str:
        alg, hexpart = parse(digest)
        return f"{self.prefix}blobs/{alg}/{hexpart[:2]}/{hexpart}"

    def _upload_dir(self, upload_id: str) -> str:
        # Upload ids are generated by us (uuid4 hex); refuse anything else to keep keys inside.
        if not upload_id.isalnum():
            raise Invalid("bad upload id")
        return f"{self.prefix}uploads/{upload_id}/"

    def _data_key(self, upload_id: str) -> str:
        return self._upload_dir(upload_id) + "data"

    # ---- blobs ------------------------------------------------------------------------------

    def stat(self, digest: str) -> int | None:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=self._blob_key(digest))[
                "ContentLength"
            ]
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def local_path(self, digest: str) -> Path | None:
        return None

    def redirect_url(self, digest: str) -> str | None:
        if not self.redirect:
            return None
        return self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._blob_key(digest)},
            ExpiresIn=self.presign_ttl,
        )

    def open(self, digest: str, start: int = 0) -> BinaryIO:
        ranged = {"Range": f"bytes={start}-"} if start else {}
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self._blob_key(digest), **ranged)[
                "Body"
            ]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(digest) from None
            raise

    def put(self, digest: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self._blob_key(digest), Body=data)

    def delete(self, digest: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self._blob_key(digest))

    # ---- upload state -----------------------------------------------------------------------

    def _load(self, upload_id: str) -> _State | None:
        try:
            body = self.s3.get_object(
                Bucket=self.bucket, Key=self._upload_dir(upload_id) + "state"
            )["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return _State(**json.loads(body))

    def _require(self, upload_id: str) -> _State:
        state = self._load(upload_id)
        if state is None:
            raise FileNotFoundError(f"upload {upload_id} is not known")
        return state

    def _save(self, upload_id: str, state: _State) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self._upload_dir(upload_id) + "state",
            Body=json.dumps(asdict(state)).encode(),
            ContentType="application/json",
        )

    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _part_size(self, number: int) -> int:
        # Parts grow every thousand so 10,000 of them reach ~440 GiB at the 8 MiB default.
        return self.part_size * (1 + (number - 1) // 1000)

    # ---- uploads ----------------------------------------------------------------------------

    def upload_start(self, upload_id: str) -> None:
        # The multipart upload is created with the first full part: most uploads (configs,
        # small layers) never need one.
        self._save(upload_id, _State())

    def upload_size(self, upload_id: str) -> int | None:
        state = self._load(upload_id)
        return None if state is None else state.size

    def upload_append(
        self, upload_id: str, chunks: Iterable[Chunk], on_chunk: Callable[[Chunk], None]
    ) -> int:
        state = self._require(upload_id)
        if state.assembled:
            self._reopen(upload_id, state)
        with tempfile.SpooledTemporaryFile(max_size=SPILL_IN_MEMORY) as spill:
            if state.tail:
                self._download(self._upload_dir(upload_id) + state.tail, spill)
            pending = state.tail_size
            failure: BaseException | None = None
            iterator = iter(chunks)
            while True:
                try:
                    chunk = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:
                    # The client went away mid-body: keep what arrived, as the filesystem store
                    # does, so the client can resume from the reported offset.
                    failure = exc
                    break
                view = memoryview(chunk)
                while view:
                    room = self._part_size(len(state.parts) + 1) - pending
                    spill.write(view[:room])
                    pending += min(room, len(view))
                    view = view[room:]
                    if pending == self._part_size(len(state.parts) + 1):
                        self._flush_part(upload_id, state, spill, pending)
                        pending = 0
                on_chunk(chunk)
                state.size += len(chunk)
            old_tail = state.tail
            state.generation += 1
            state.tail = f"tail-{state.generation}" if pending else None
            state.tail_size = pending
            if pending:
                spill.seek(0)
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self._upload_dir(upload_id) + state.tail,
                    Body=spill,
                    ContentLength=pending,
                )
        self._save(upload_id, state)
        if old_tail:
            self.s3.delete_object(Bucket=self.bucket, Key=self._upload_dir(upload_id) + old_tail)
        if failure is not None:
            raise failure
        return state.size

    def _download(self, key: str, out: IO[bytes]) -> None:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        with body:
            while chunk := body.read(CHUNK):
                out.write(chunk)

    def _flush_part(self, upload_id: str, state: _State, spill: IO[bytes], size: int) -> None:
        if len(state.parts) >= MAX_PARTS:
            raise TooLarge("upload exceeds S3's 10,000 parts")
        if state.mpu is None:
            state.mpu = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self._data_key(upload_id)
            )["UploadId"]
        number = len(state.parts) + 1
        spill.seek(0)
        etag = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self._data_key(upload_id),
            UploadId=state.mpu,
            PartNumber=number,
            Body=spill,
            ContentLength=size,
        )["ETag"]
        state.parts.append([number, etag, size])
        spill.seek(0)
        spill.truncate()

    def _assemble(self, upload_id: str, state: _State) -> None:
        """Complete the multipart upload, the tail its last part, into the readable `data`."""
        if state.assembled:
            return
        data_key = self._data_key(upload_id)
        parts = list(state.parts)
        try:
            if state.tail:
                tail = {"Bucket": self.bucket, "Key": self._upload_dir(upload_id) + state.tail}
                etag = self.s3.upload_part_copy(
                    Bucket=self.bucket,
                    Key=data_key,
                    UploadId=state.mpu,
                    PartNumber=len(parts) + 1,
                    CopySource=tail,
                )["CopyPartResult"]["ETag"]
                parts.append([len(parts) + 1, etag, state.tail_size])
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=data_key,
                UploadId=state.mpu,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e, _ in parts]},
            )
        except ClientError as exc:
            # Completed by a replica that died before recording it: the object says so.
            if not (_missing(exc) and self._size_of(data_key) == state.size):
                raise
        old_tail = state.tail
        state.assembled, state.mpu, state.parts = True, None, []
        state.tail, state.tail_size = None, 0
        self._save(upload_id, state)
        if old_tail:
            self.s3.delete_object(Bucket=self.bucket, Key=self._upload_dir(upload_id) + old_tail)

    def _reopen(self, upload_id: str, state: _State) -> None:
        """More bytes for an assembled upload (a retry after a failed completion): un-assemble."""
        data_key = self._data_key(upload_id)
        state.assembled = False
        state.generation += 1
        if state.size < MIN_PART:
            state.tail = f"tail-{state.generation}"
            state.tail_size = state.size
            self.s3.copy_object(
                Bucket=self.bucket,
                Key=self._upload_dir(upload_id) + state.tail,
                CopySource={"Bucket": self.bucket, "Key": data_key},
            )
            return
        # A new multipart upload on the same key starts from server-side copies of what is there;
        # equal ranges keep every one of them above the 5 MiB minimum.
        state.mpu = self.s3.create_multipart_upload(Bucket=self.bucket, Key=data_key)["UploadId"]
        count = -(-state.size // MAX_COPY)
        for number, (first, last) in enumerate(_ranges(state.size, count), start=1):
            etag = self.s3.upload_part_copy(
                Bucket=self.bucket,
                Key=data_key,
                UploadId=state.mpu,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": data_key},
                CopySourceRange=f"bytes={first}-{last}",
            )["CopyPartResult"]["ETag"]
            state.parts.append([number, etag, last - first + 1])

    def _size_of(self, key: str) -> int | None:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def _content_key(self, upload_id: str, state: _State) -> str | None:
        """The one object holding the whole upload, assembling it if need be."""
        if state.parts or state.assembled:
            self._assemble(upload_id, state)
            return self._data_key(upload_id)
        if state.tail:
            return self._upload_dir(upload_id) + state.tail
        return None

    def upload_read(self, upload_id: str) -> Iterator[bytes]:
        state = self._require(upload_id)
        key = self._content_key(upload_id, state)
        if key is None:
            return
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        with body:
            while chunk := body.read(CHUNK):
                yield chunk

    def upload_sync(self, upload_id: str) -> None:
        pass  # parts and the tail are durable objects the moment S3 acknowledges them

    def upload_commit(self, upload_id: str, digest: str) -> int:
        state = self._require(upload_id)
        key = self._content_key(upload_id, state)
        target = self._blob_key(digest)
        if key is None:
            self.s3.put_object(Bucket=self.bucket, Key=target, Body=b"")
        else:
            self._copy(key, target, state.size)
        self._cleanup(upload_id)
        return state.size

    def _copy(self, source: str, target: str, size: int) -> None:
        src = {"Bucket": self.bucket, "Key": source}
        if size <= self.copy_limit:
            self.s3.copy_object(Bucket=self.bucket, Key=target, CopySource=src)
            return
        mpu = self.s3.create_multipart_upload(Bucket=self.bucket, Key=target)["UploadId"]
        step = self.copy_part_size
        ranges = [(first, min(first + step, size) - 1) for first in range(0, size, step)]

        def copy_part(item: tuple[int, tuple[int, int]]) -> dict[str, Any]:
            number, (first, last) = item
            result = self.s3.upload_part_copy(
                Bucket=self.bucket,
                Key=target,
                UploadId=mpu,
                PartNumber=number,
                CopySource=src,
                CopySourceRange=f"bytes={first}-{last}",
            )
            return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

        try:
            # Parts copy in parallel: a large blob would otherwise keep the client waiting on
            # its final PUT for minutes.
            with ThreadPoolExecutor(max_workers=8) as pool:
                parts = list(pool.map(copy_part, enumerate(ranges, start=1)))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=target, UploadId=mpu, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=mpu)
            raise

    def _cleanup(self, upload_id: str) -> None:
        prefix = self._upload_dir(upload_id)
        # The state goes first, so the session is unknown at once even if the rest fails.
        self.s3.delete_object(Bucket=self.bucket, Key=prefix + "state")
        # Listing rather than trusting the state also catches what a dead replica left behind.
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for mpu in page.get("Uploads", []):
                try:
                    self.s3.abort_multipart_upload(
                        Bucket=self.bucket, Key=mpu["Key"], UploadId=mpu["UploadId"]
                    )
                except ClientError as exc:
                    if not _missing(exc):
                        raise
        keys = [
            obj["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for obj in page.get("Contents", [])
        ]
        self._delete_keys(keys)

    def upload_abort(self, upload_id: str) -> None:
        self._cleanup(upload_id)

    def list_blobs(self) -> Iterator[tuple[str, datetime]]:
        prefix = f"{self.prefix}blobs/"
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                parts = obj["Key"][len(prefix) :].split("/")
                if len(parts) == 3:
                    stamp = obj["LastModified"].astimezone(UTC).replace(tzinfo=None)
                    yield f"{parts[0]}:{parts[2]}", stamp


def _ranges(size: int, count: int) -> list[tuple[int, int]]:
    """`count` contiguous inclusive byte ranges covering `size` bytes, as equal as can be."""
    bounds = [size * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


def _outage(exc: Exception) -> bool:
    """Connection failures, timeouts and 5xx answers: the service, not the request, is at fault."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500
    return isinstance(exc, BotoCoreError)


def _translating(fn: Callable) -> Callable:
    """Turn an outage into StorageUnavailable, also while a returned generator is consumed."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (BotoCoreError, ClientError) as exc:
                if _outage(exc):
                    raise StorageUnavailable(str(exc)) from exc
                raise

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            if _outage(exc):
                raise StorageUnavailable(str(exc)) from exc
            raise

    return wrapper


for _name, _fn in list(vars(S3Store).items()):
    if not _name.startswith("_") and inspect.isfunction(_fn):
        setattr(S3Store, _name, _translating(_fn))
