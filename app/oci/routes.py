"""/v2 routes. Repository names contain slashes, so one route parses the path from its end."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request

from app import limits
from app.access import audit
from app.auth.credentials import current_caller
from app.digests import CHUNK, is_digest
from app.errors import CoreError, NotFound
from app.gate import KINDS, Target, dispatches, kind, permits, requires
from app.models import db
from app.registry import (
    blobs,
    catalog,
    deletion,
    manifest_bodies,
    manifest_store,
    quotas,
    repositories,
    uploads,
)
from app.registry.errors import RegistryError
from app.registry.manifests import INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX
from app.registry.names import RepoName, parse_repository
from app.registry.pull_policy import check_manifest_pull
from app.web import distribution_error, send_blob

bp = Blueprint("oci", __name__)
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


def _store():
    return current_app.extensions["cargohold.store"]


@bp.errorhandler(CoreError)
def _error(exc: CoreError):
    return distribution_error(exc)


@bp.after_request
def _api_version(resp: Response) -> Response:
    resp.headers.update(API_VERSION)
    return resp


def _body_chunks() -> Iterator[memoryview]:
    """The request body in pieces of up to CHUNK bytes, each received into the same buffer
    (app/http_body.py): the store writes a piece before it takes the next. What the request
    wrote so far is committed first: no write transaction (on SQLite, the database's one write
    lock) may stay open while a client streams a body at its own pace."""
    db.session.commit()
    stream = request.stream
    buffer = memoryview(bytearray(CHUNK))
    while filled := stream.readinto(buffer):
        yield buffer[:filled]


# The most results one page may ask for (Distribution refuses its catalog's n past 1000).
MAX_PAGE = 10_000


def _page_size() -> int | None:
    value = request.args.get("n")
    if value is None or value == "":
        return None
    try:
        return limits.parse_count(value, "n", MAX_PAGE)
    except limits.InputRejected as exc:
        raise RegistryError("PAGINATION_NUMBER_INVALID", str(exc)) from None


def _next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'


def _paginate(path: str, fetch: Callable[[str | None, int | None], list[str]]):
    n, last = _page_size(), request.args.get("last") or None
    if n == 0:
        return [], None
    items = fetch(last, n + 1 if n else None)
    if n is not None and len(items) > n:
        items = items[:n]
        return items, _next_link(path, n, items[-1])
    return items, None


# ---- base and catalog -----------------------------------------------------------------------


@bp.route("/v2/", methods=["GET", "HEAD"])
@requires(None, "login")  # clients learn the token realm from its challenge, even to pull
def base():
    return jsonify({})


@bp.route("/v2/_catalog", methods=["GET", "HEAD"])
@requires(None, "catalog")
def catalog_list():
    caller = current_caller()
    names, link = _paginate(
        "/v2/_catalog", lambda last, limit: catalog.visible_names(caller.principal, last, limit)
    )
    resp = jsonify({"repositories": names})
    if link:
        resp.headers["Link"] = link
    return resp


# ---- manifests ------------------------------------------------------------------------------


def _accepts(stored: str) -> bool:
    """Old clients that cannot read an index must not be handed one (as Distribution does)."""
    # Every range the client names, q-values aside (servers join repeated Accept lines).
    wanted = {value.split(";")[0].strip().lower() for value in request.accept_mimetypes.values()}
    if stored not in INDEX_TYPES or not wanted & set(MANIFEST_TYPES):
        return True
    return bool(wanted & {stored, *INDEX_TYPES, "*/*", "application/*"})


@requires("pull", "repository")
def get_manifest(name: RepoName, reference: str):
    manifest = manifest_store.locate(name, reference)
    if not _accepts(manifest.media_type):
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            f"{reference} is an image index ({manifest.media_type}) and the request's Accept "
            "header does not allow one",
        )
    # Registry policies (signatures, vulnerabilities) may refuse the pull: one hook.
    check_manifest_pull(
        _store(), manifest, lambda: permits("push", "repository", by_role=True, name=name)
    )
    headers = {
        "Docker-Content-Digest": manifest.digest,
        "ETag": f'"{manifest.digest}"',
        "Content-Type": manifest.media_type,
    }
    if request.if_none_match.contains_weak(manifest.digest):
        return Response(status=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(manifest.size)
        return Response(status=200, headers=headers)
    body = manifest_bodies.read(_store(), manifest.digest)
    audit.pulled(
        manifest.registry_id,
        manifest.repository_name,
        "manifest.pull",
        reference,
        {"digest": manifest.digest},
    )
    return Response(body, status=200, headers=headers)


def _read_manifest_body() -> bytes:
    limit = current_app.extensions["cargohold.settings"].max_manifest_bytes
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise RegistryError("MANIFEST_INVALID", f"manifest exceeds {limit} bytes", status=413)
    return body


@requires("push", "repository")
def put_manifest(name: RepoName, reference: str):
    body = _read_manifest_body()
    repo = repositories.ensure(name)
    digest, parsed = manifest_store.put(
        _store(),
        repo,
        reference,
        body,
        request.headers.get("Content-Type"),
        request.args.getlist("tag"),
    )
    resp = Response(status=201)
    resp.headers["Location"] = f"/v2/{name.full}/manifests/{digest}"
    resp.headers["Docker-Content-Digest"] = digest
    if parsed.subject:
        resp.headers["OCI-Subject"] = parsed.subject.digest
    # A push by digest with ?tag= parameters reports the tags it applied.
    for tag in request.args.getlist("tag"):
        resp.headers.add("OCI-Tag", tag)
    return resp


@requires("delete", "repository")
def delete_manifest(name: RepoName, reference: str):
    repo = repositories.require(name)
    if is_digest(reference):
        # Its referrers, and an index's children nothing else uses, go with it.
        deletion.delete_manifest(repo, reference)
    else:
        manifest_store.delete_reference(repo, reference)
    return Response(status=202)


# ---- blobs ----------------------------------------------------------------------------------


@requires("pull", "repository")
def get_blob(name: RepoName, digest: str):
    blobs.check_digest(digest)
    repo = repositories.require(name)
    store = _store()
    size = blobs.linked_size(repo, digest)
    if size is None or store.stat(digest) is None:
        raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not in repository {name.full}")
    if request.method == "GET":
        audit.pulled(repo.registry_id, repo.name, "blob.pull", digest, {"size": size})
    try:
        return send_blob(
            store,
            digest,
            size,
            "private, max-age=31536000, immutable",
            headers={"Docker-Content-Digest": digest},
        )
    except NotFound:  # collected since the check above
        raise RegistryError(
            "BLOB_UNKNOWN", f"blob {digest} is not in repository {name.full}"
        ) from None


@requires("delete", "repository")
def delete_blob(name: RepoName, digest: str):
    blobs.check_digest(digest)
    if not blobs.unlink(repositories.require(name), digest):
        raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not in repository {name.full}")
    return Response(status=202)


# ---- uploads --------------------------------------------------------------------------------


def _upload_headers(name: RepoName, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name.full}/blobs/uploads/{upload_id}",
        "Range": uploads.range_header(size),
        "Docker-Upload-UUID": upload_id,
        "Content-Length": "0",
    }


def _created(name: RepoName, digest: str) -> Response:
    return Response(
        status=201,
        headers={
            "Location": f"/v2/{name.full}/blobs/{digest}",
            "Docker-Content-Digest": digest,
            "Content-Length": "0",
        },
    )


def _mount_source() -> RepoName | None:
    """The repository named by `from`, when the request asks to mount from a valid one."""
    source = request.args.get("from")
    if not request.args.get("mount") or not source:
        return None
    try:
        return parse_repository(source)
    except RegistryError:
        return None


def _try_mount(repo, digest: str, source: RepoName | None) -> bool:
    """Mount only from a repository the caller (and its token) may read that holds the blob.
    Anything else is an ordinary upload session, as the distribution spec asks."""
    if source is None or not permits("pull", "repository", name=source):
        return False
    return blobs.mount(repo, digest, source)


def _finish(repo, upload, digest: str) -> None:
    upload_id = upload.id
    try:
        uploads.finish(_store(), repo, upload, digest)
    except quotas.QuotaExceeded as exc:
        # A commit point too: the refusal takes back the link and the count, while the
        # session, whose bytes are in the store by now, goes and its content awaits the
        # collector.
        db.session.rollback()
        uploads.forget_refused(upload_id, exc.digest, exc.size)
        db.session.commit()
        raise
    except RegistryError as exc:
        if exc.code == "DIGEST_INVALID":
            # A commit point: finish cancelled the session, whose bytes are gone from storage,
            # and the refusal must not bring its row back.
            db.session.commit()
        raise


@kind("upload")
def _upload_target(action: str | None, args: dict) -> Target:
    """Starting an upload needs push on the repository; a cross-repository mount also names the
    source's pull scope in the challenge, so a client that fetches one token can mount."""
    target = KINDS["repository"](action, args)
    source = _mount_source()
    if source is None or source == args["name"]:
        return target
    return replace(target, scope=f"{target.scope} repository:{source.full}:pull")


@requires("push", "upload")
def start_upload(name: RepoName):
    source = _mount_source()
    caller = current_caller()
    repo = repositories.ensure(name)
    store = _store()
    if mount := request.args.get("mount"):
        blobs.check_digest(mount)
        if _try_mount(repo, mount, source):
            return _created(name, mount)
    upload = uploads.start(store, repo, caller.principal)
    if digest := request.args.get("digest"):
        blobs.check_digest(digest)
        uploads.append(store, upload, _body_chunks(), length=request.content_length)
        _finish(repo, upload, digest)
        return _created(name, digest)
    return Response(status=202, headers=_upload_headers(name, upload.id, 0))


def _session(name: RepoName, upload_id: str):
    repo = repositories.require(name)
    return repo, uploads.find(_store(), repo, upload_id, current_caller().principal)


_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\S+)?$")


def _content_range() -> tuple[int | None, int | None]:
    value = request.headers.get("Content-Range")
    if not value:
        return None, None
    m = _CONTENT_RANGE.match(value.strip())
    if not m:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"malformed Content-Range {value!r}", status=416)
    try:
        first, last = (limits.parse_count(m[i], "a Content-Range offset") for i in (1, 2))
    except limits.InputRejected as exc:
        raise RegistryError("BLOB_UPLOAD_INVALID", str(exc)) from None
    if last < first:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"malformed Content-Range {value!r}", status=416)
    return first, last - first + 1


def _append_body(upload) -> int:
    first, length = _content_range()
    announced = request.content_length
    if length is not None and announced is not None and announced != length:
        raise RegistryError(
            "SIZE_INVALID", f"Content-Range covers {length} bytes, Content-Length is {announced}"
        )
    if uploads.note_activity(upload):
        # Now, not when the body starts: the store may make calls first (S3), and the stamp's
        # write would hold SQLite's one write lock through them.
        db.session.commit()
    return uploads.append(_store(), upload, _body_chunks(), first, length or announced)


@requires("push", "repository")
def patch_upload(name: RepoName, upload_id: str):
    _, upload = _session(name, upload_id)
    try:
        size = _append_body(upload)
    except RegistryError as exc:
        if exc.status == 416:
            exc.headers["Location"] = f"/v2/{name.full}/blobs/uploads/{upload_id}"
        raise
    return Response(status=202, headers=_upload_headers(name, upload_id, size))


@requires("push", "repository")
def put_upload(name: RepoName, upload_id: str):
    repo, upload = _session(name, upload_id)
    digest = request.args.get("digest")
    if not digest:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    blobs.check_digest(digest)
    if request.content_length or request.headers.get("Transfer-Encoding") == "chunked":
        _append_body(upload)
    _finish(repo, upload, digest)
    return _created(name, digest)


@requires("push", "repository")
def upload_status(name: RepoName, upload_id: str):
    _, upload = _session(name, upload_id)
    size = uploads.size_of(_store(), upload)
    return Response(status=204, headers=_upload_headers(name, upload.id, size))


@requires("push", "repository")
def cancel_upload(name: RepoName, upload_id: str):
    _, upload = _session(name, upload_id)
    uploads.cancel(_store(), upload)
    return Response(status=204)


# ---- discovery ------------------------------------------------------------------------------


@requires("pull", "repository")
def list_tags(name: RepoName):
    repo = repositories.require(name)
    tags, link = _paginate(
        f"/v2/{name.full}/tags/list",
        lambda last, limit: manifest_store.tag_names(repo, last, limit),
    )
    resp = jsonify({"name": name.full, "tags": tags})
    if link:
        resp.headers["Link"] = link
    return resp


@requires("pull", "repository")
def list_referrers(name: RepoName, digest: str):
    blobs.check_digest(digest)
    artifact_type = request.args.get("artifactType") or None
    repo = repositories.find(name)
    found = manifest_store.referrers(repo, digest, artifact_type) if repo else []
    resp = jsonify({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found})
    resp.headers["Content-Type"] = OCI_INDEX
    if artifact_type:
        resp.headers["OCI-Filters-Applied"] = "artifactType"
    return resp


# ---- dispatch -------------------------------------------------------------------------------

Handler = Callable[..., Response]
# Longest suffix first: a repository may itself contain a component named "blobs".
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$", get_manifest),
    ("PUT", r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$", put_manifest),
    ("DELETE", r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$", delete_manifest),
    ("POST", r"^(?P<name>.+)/blobs/uploads/?$", start_upload),
    ("GET", r"^(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$", upload_status),
    ("PATCH", r"^(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$", patch_upload),
    ("PUT", r"^(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$", put_upload),
    ("DELETE", r"^(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$", cancel_upload),
    ("GET", r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$", get_blob),
    ("DELETE", r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$", delete_blob),
    ("GET", r"^(?P<name>.+)/tags/list$", list_tags),
    ("GET", r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$", list_referrers),
]
TABLE: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
for _method, _pattern, _handler in ROUTES:
    if not TABLE or TABLE[-1][0].pattern != _pattern:
        TABLE.append((re.compile(_pattern), {}))
    TABLE[-1][1][_method] = _handler


@bp.route("/v2/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
@dispatches(ROUTES)
def dispatch(rest: str):
    for pattern, handlers in TABLE:
        m = pattern.match(rest)
        if not m:
            continue
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers.get(method)
        if handler is None:
            raise RegistryError("UNSUPPORTED", f"{request.method} is not supported here")
        params = m.groupdict()
        params["name"] = parse_repository(params["name"])
        # Each handler is guarded by its declared requirement, checked before its body runs.
        return handler(**params)
    raise RegistryError("NAME_UNKNOWN", f"no OCI endpoint at /v2/{rest}", status=404)
