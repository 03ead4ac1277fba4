"""The S3 BlobStore against a real S3 server (SeaweedFS from scripts/services.sh), not a mock."""

from __future__ import annotations

import hashlib
import os

import pytest
import requests

from app.storage.s3 import MiB, S3Store
from tests.support.services import Services, require_services, unique_prefix


@pytest.fixture(scope="module")
def services() -> Services:
    return require_services()


@pytest.fixture
def make_store(services):
    prefixes: list[str] = []

    def make(prefix: str | None = None, **options) -> S3Store:
        prefix = prefix or unique_prefix()
        prefixes.append(prefix)
        options.setdefault("part_size", 5 * MiB)
        return S3Store(services.s3_client(), services.s3_bucket, prefix=prefix, **options)

    yield make
    for prefix in prefixes:
        services.purge(prefix)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def in_flight(services: Services, store: S3Store) -> tuple[list[str], list[dict]]:
    prefix = store.prefix + "uploads/"
    return services.keys(prefix), services.multipart_uploads(prefix)


def read_upload(store: S3Store, upload_id: str) -> bytes:
    return b"".join(store.upload_read(upload_id))


def test_put_stat_open_delete(make_store):
    store = make_store()
    data = b'{"schemaVersion": 2}'
    d = digest(data)
    assert store.stat(d) is None
    store.put(d, data)
    assert store.stat(d) == len(data)
    assert store.local_path(d) is None
    with store.open(d) as f:
        assert f.read() == data
    store.delete(d)
    assert store.stat(d) is None
    with pytest.raises(FileNotFoundError):
        store.open(d)


def test_small_chunks_across_replicas(services, make_store):
    """1 MiB chunks, each append on another store instance: the state is in S3 alone."""
    first = make_store()
    second = make_store(prefix=first.prefix.rstrip("/"))
    data = os.urandom(13 * MiB + 12345)
    first.upload_start("u1")
    h = hashlib.sha256()
    for i in range(0, len(data), MiB):
        store = (first, second)[(i // MiB) % 2]
        size = store.upload_append("u1", [data[i : i + MiB]], h.update)
        assert size == min(i + MiB, len(data))
        assert (second, first)[(i // MiB) % 2].upload_size("u1") == size
    assert f"sha256:{h.hexdigest()}" == digest(data)
    assert read_upload(second, "u1") == data
    assert first.upload_commit("u1", digest(data)) == len(data)
    assert second.stat(digest(data)) == len(data)
    with second.open(digest(data)) as f:
        assert f.read() == data
    assert in_flight(services, first) == ([], [])
    assert first.upload_size("u1") is None


def test_chunks_larger_than_a_part(services, make_store):
    store = make_store()
    data = os.urandom(23 * MiB + 7)
    store.upload_start("big")
    h = hashlib.sha256()
    assert store.upload_append("big", [data[: 12 * MiB]], h.update) == 12 * MiB
    assert store.upload_append("big", [data[12 * MiB :]], h.update) == len(data)
    assert f"sha256:{h.hexdigest()}" == digest(data)
    store.upload_commit("big", digest(data))
    with store.open(digest(data)) as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest(data).split(":")[1]
    assert in_flight(services, store) == ([], [])


def test_empty_upload(services, make_store):
    store = make_store()
    store.upload_start("empty")
    assert store.upload_size("empty") == 0
    assert read_upload(store, "empty") == b""
    assert store.upload_commit("empty", digest(b"")) == 0
    assert store.stat(digest(b"")) == 0
    assert in_flight(services, store) == ([], [])


def test_digest_mismatch_leaves_nothing(services, make_store):
    """What uploads.finish does on a mismatch: re-read, compare, abort; nothing remains."""
    store = make_store()
    data = os.urandom(7 * MiB)
    claimed = digest(b"something else")
    store.upload_start("bad")
    store.upload_append("bad", [data], lambda _: None)
    actual = hashlib.sha256(read_upload(store, "bad")).hexdigest()
    assert f"sha256:{actual}" != claimed
    store.upload_abort("bad")
    assert services.keys(store.prefix) == []
    assert services.multipart_uploads(store.prefix) == []
    assert store.stat(claimed) is None and store.stat(digest(data)) is None


def test_abort_cleans_up(services, make_store):
    store = make_store()
    store.upload_start("gone")
    store.upload_append("gone", [os.urandom(6 * MiB)], lambda _: None)
    keys, mpus = in_flight(services, store)
    assert keys and mpus, "a part and a tail should be in flight"
    store.upload_abort("gone")
    assert in_flight(services, store) == ([], [])
    assert store.upload_size("gone") is None


def test_presigned_url(make_store):
    store = make_store(presign_ttl=60)
    data = os.urandom(1000)
    store.put(digest(data), data)
    url = store.redirect_url(digest(data))
    assert url and "X-Amz-Expires=60" in url
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == data
    assert make_store(redirect=False).redirect_url(digest(data)) is None


def test_multipart_copy_above_the_copy_limit(services, make_store):
    """Blobs over 5 GiB need a multipart copy; a lowered limit exercises that path."""
    store = make_store(copy_limit=6 * MiB, copy_part_size=5 * MiB)
    data = os.urandom(12 * MiB + 3)
    store.upload_start("copy")
    store.upload_append("copy", [data], lambda _: None)
    store.upload_commit("copy", digest(data))
    with store.open(digest(data)) as f:
        assert f.read() == data
    assert services.multipart_uploads(store.prefix) == []


@pytest.mark.parametrize("size", [3 * MiB, 7 * MiB])
def test_append_after_a_verifying_read(services, make_store, size):
    """A re-read assembles the upload; more bytes after it (a retried finish) still work."""
    store = make_store()
    head, more = os.urandom(size), os.urandom(6 * MiB)
    store.upload_start("again")
    store.upload_append("again", [head], lambda _: None)
    assert read_upload(store, "again") == head
    assert store.upload_append("again", [more], lambda _: None) == size + len(more)
    assert read_upload(store, "again") == head + more
    store.upload_commit("again", digest(head + more))
    with store.open(digest(head + more)) as f:
        assert f.read() == head + more
    assert in_flight(services, store) == ([], [])


def test_client_gone_mid_body_keeps_what_arrived(make_store):
    store = make_store()
    store.upload_start("cut")

    def body():
        yield b"a" * MiB
        yield b"b" * MiB
        raise OSError("client disconnected")

    with pytest.raises(OSError):
        store.upload_append("cut", body(), lambda _: None)
    assert store.upload_size("cut") == 2 * MiB
    assert read_upload(store, "cut") == b"a" * MiB + b"b" * MiB


class Killed(BaseException):
    """Stands in for a worker dying: nothing after it runs."""


def test_replica_dying_mid_append_leaves_the_previous_state(services, make_store):
    store = make_store()
    first = os.urandom(2 * MiB)
    store.upload_start("dies")
    store.upload_append("dies", [first], lambda _: None)

    def body():
        yield os.urandom(6 * MiB)  # fills and uploads a part before the death
        raise Killed

    with pytest.raises(Killed):
        store.upload_append("dies", body(), lambda _: None)
    assert store.upload_size("dies") == len(first)
    # Another replica resumes from the recorded offset; the orphan part is overwritten.
    other = make_store(prefix=store.prefix.rstrip("/"))
    rest = os.urandom(9 * MiB)
    other.upload_append("dies", [rest], lambda _: None)
    assert read_upload(other, "dies") == first + rest
    other.upload_commit("dies", digest(first + rest))
    with other.open(digest(first + rest)) as f:
        assert f.read() == first + rest
    assert in_flight(services, store) == ([], [])
