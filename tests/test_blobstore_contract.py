"""One contract for every BlobStore backend, as Distribution runs one suite against every storage
driver: the filesystem store, and the S3 store against SeaweedFS (`make services`; it fails
rather than skips under CI=true). What only one backend does (multipart parts, presigned URL
lifetimes, server-side copies) stays in that backend's own tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from app.storage import BlobStore
from app.storage.filesystem import FilesystemStore
from tests.support.services import require_services, unique_prefix

MiB = 1024 * 1024


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Backend:
    """A backend under test: stores sharing one place (replicas), and what is still in flight."""

    make: Callable[[], BlobStore]
    in_flight: Callable[[], list[str]]
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _filesystem(tmp_path: Path) -> Backend:
    root = tmp_path / "storage"
    make = lambda: FilesystemStore(root, sendfile=True)  # noqa: E731
    make()
    return Backend(make, lambda: sorted(p.name for p in (root / "uploads").iterdir()))


def _s3() -> Backend:
    from app.storage.s3 import S3Store

    services = require_services()
    prefix = unique_prefix()

    def make() -> S3Store:
        return S3Store(services.s3_client(), services.s3_bucket, prefix=prefix, part_size=5 * MiB)

    def in_flight() -> list[str]:
        where = make().prefix + "uploads/"
        mpus = [m["Key"] for m in services.multipart_uploads(where)]
        return sorted(services.keys(where) + mpus)

    return Backend(make, in_flight, [lambda: services.purge(prefix)])


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, tmp_path) -> Backend:
    made = _filesystem(tmp_path) if request.param == "filesystem" else _s3()
    yield made
    for step in made.cleanup:
        step()


@pytest.fixture
def store(backend) -> BlobStore:
    return backend.make()


def read_upload(store: BlobStore, upload_id: str) -> bytes:
    return b"".join(store.upload_read(upload_id))


def read_blob(store: BlobStore, d: str) -> bytes:
    f = store.open(d)
    try:
        return f.read()
    finally:
        f.close()


# ---- blobs ----------------------------------------------------------------------------------


def test_put_stat_open_delete(store):
    data = b'{"schemaVersion": 2}'
    d = digest(data)
    assert store.stat(d) is None
    store.put(d, data)
    store.put(d, data)  # idempotent: racing pushes of one manifest both succeed
    assert store.stat(d) == len(data)
    assert read_blob(store, d) == data
    store.delete(d)
    assert store.stat(d) is None
    with pytest.raises(FileNotFoundError):
        store.open(d)


def test_missing_blobs(store):
    d = digest(b"never stored")
    assert store.stat(d) is None
    with pytest.raises(FileNotFoundError):
        store.open(d)
    store.delete(d)  # deleting what is absent is not an error


def test_local_path_and_redirect_serve_the_content(store):
    data = os.urandom(1000)
    store.put(digest(data), data)
    path = store.local_path(digest(data))
    if path is not None:
        assert path.read_bytes() == data
    url = store.redirect_url(digest(data))
    if url is not None:
        r = requests.get(url, timeout=30)
        assert r.status_code == 200 and r.content == data


def test_open_from_an_offset(store):
    data = os.urandom(3 * MiB + 7)
    store.put(digest(data), data)
    for start in (0, 1, MiB + 3, len(data) - 1):
        with store.open(digest(data), start) as f:
            assert f.read() == data[start:]


def test_filesystem_offers_a_path_for_sendfile_only_when_told_to(tmp_path):
    data = os.urandom(1000)
    copying, sending = FilesystemStore(tmp_path), FilesystemStore(tmp_path, sendfile=True)
    copying.put(digest(data), data)
    assert copying.local_path(digest(data)) is None
    assert sending.local_path(digest(data)).read_bytes() == data


# ---- uploads --------------------------------------------------------------------------------


def test_chunks_received_into_one_reused_buffer(backend):
    """As the upload routes hand them over: each chunk a view of the same buffer, refilled
    with the next piece once the store has taken it (7 MiB: past an S3 part of 5 MiB)."""
    store = backend.make()
    pieces = [os.urandom(MiB) for _ in range(7)] + [os.urandom(4321)]
    buffer = bytearray(MiB)

    def chunks():
        for piece in pieces:
            buffer[: len(piece)] = piece
            yield memoryview(buffer)[: len(piece)]

    store.upload_start("reused")
    h = hashlib.sha256()
    assert store.upload_append("reused", chunks(), h.update) == 7 * MiB + 4321
    data = b"".join(pieces)
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    assert read_upload(store, "reused") == data
    store.upload_commit("reused", digest(data))
    assert read_blob(store, digest(data)) == data


def test_chunked_upload_across_replicas(backend):
    """1 MiB chunks, each appended by another instance: the state is in the backend alone."""
    first, second = backend.make(), backend.make()
    data = os.urandom(11 * MiB + 12345)
    first.upload_start("u1")
    assert first.upload_size("u1") == 0
    h = hashlib.sha256()
    for i in range(0, len(data), MiB):
        writer, reader = (first, second) if (i // MiB) % 2 == 0 else (second, first)
        size = writer.upload_append("u1", [data[i : i + MiB]], h.update)
        assert size == min(i + MiB, len(data))
        assert reader.upload_size("u1") == size
    assert f"sha256:{h.hexdigest()}" == digest(data)
    assert read_upload(second, "u1") == data
    second.upload_sync("u1")
    assert read_upload(first, "u1") == data
    assert first.upload_commit("u1", digest(data)) == len(data)
    assert second.stat(digest(data)) == len(data)
    assert read_blob(second, digest(data)) == data
    assert first.upload_size("u1") is None
    assert backend.in_flight() == []


def test_on_chunk_sees_every_byte_in_order(store):
    parts = [os.urandom(n) for n in (1, 300_000, MiB, 7)]
    seen = bytearray()
    store.upload_start("order")
    assert store.upload_append("order", iter(parts), seen.extend) == sum(map(len, parts))
    assert bytes(seen) == b"".join(parts)
    store.upload_abort("order")


def test_empty_upload(backend, store):
    store.upload_start("empty")
    assert store.upload_size("empty") == 0
    assert read_upload(store, "empty") == b""
    assert store.upload_commit("empty", digest(b"")) == 0
    assert store.stat(digest(b"")) == 0
    assert backend.in_flight() == []


def test_unknown_upload(store):
    assert store.upload_size("nosuchupload") is None


def test_abort_leaves_nothing(backend, store):
    """What uploads.finish does on a digest mismatch: re-read, compare, abort."""
    data = os.urandom(6 * MiB)
    store.upload_start("gone")
    store.upload_append("gone", [data], lambda _: None)
    assert backend.in_flight() != []
    assert digest(read_upload(store, "gone")) == digest(data)
    store.upload_abort("gone")
    assert store.upload_size("gone") is None
    assert store.stat(digest(data)) is None
    assert backend.in_flight() == []


@pytest.mark.parametrize("size", [3 * MiB, 7 * MiB])
def test_append_after_a_verifying_read(backend, store, size):
    """More bytes after a re-read (a retried finish) still work."""
    head, more = os.urandom(size), os.urandom(6 * MiB)
    store.upload_start("again")
    store.upload_append("again", [head], lambda _: None)
    assert read_upload(store, "again") == head
    assert store.upload_append("again", [more], lambda _: None) == size + len(more)
    assert read_upload(store, "again") == head + more
    store.upload_commit("again", digest(head + more))
    assert read_blob(store, digest(head + more)) == head + more
    assert backend.in_flight() == []


def test_client_gone_mid_body_keeps_what_arrived(store):
    store.upload_start("cut")

    def body():
        yield b"a" * MiB
        yield b"b" * MiB
        raise OSError("client disconnected")

    with pytest.raises(OSError):
        store.upload_append("cut", body(), lambda _: None)
    assert store.upload_size("cut") == 2 * MiB
    assert read_upload(store, "cut") == b"a" * MiB + b"b" * MiB
    # ...and the client resumes from there.
    assert store.upload_append("cut", [b"c"], lambda _: None) == 2 * MiB + 1
    store.upload_abort("cut")
