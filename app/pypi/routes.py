"""/api/v1/<org>/<registry>/python/...: the upload API twine and uv publish speak, the Simple API
pip and uv read, file downloads, and yank/delete management.

Errors are plain text with the reason in the status line, as PyPI answers: twine prints the
reason phrase, and `--skip-existing` looks for "already exist" in it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC

from flask import Blueprint, Response, current_app, jsonify, redirect, request, url_for
from werkzeug.exceptions import HTTPException

from app import limits
from app.access import RegistryResource, audit
from app.access.policy import find_registry
from app.auth.credentials import current_caller
from app.errors import CoreError, Denied
from app.gate import LATER, Target, kind, require, requires
from app.models import PythonFile, db
from app.pypi import cli, provenance, publish, simple
from app.pypi.errors import bad_request, not_found
from app.pypi.form import read_upload
from app.pypi.index import Page, root_page
from app.registry.python import files as listing
from app.registry.python import withdraw
from app.registry.python.names import normalize, repository
from app.registry.vulnerabilities.pulls import file_refusal
from app.web import BASIC_CHALLENGE, drain_request_body, read_json_body, send_blob

bp = Blueprint("pypi", __name__, url_prefix="/api/v1/<org>/<registry>/python", cli_group="python")
for _command in cli.COMMANDS:
    bp.cli.add_command(_command)
MAX_REASON = 1024


def _blobstore():
    return current_app.extensions["cargohold.store"]


def _management() -> bool:
    return "/python/projects/" in request.path


def _integrity() -> bool:
    return "/python/integrity/" in request.path


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    drain_request_body()
    if _management():
        resp = jsonify({"error": message})
        resp.status_code = status
    elif _integrity():
        # PyPI's Integrity API answers its errors as {"message": ...}.
        resp = jsonify({"message": message})
        resp.status_code = status
    else:
        # The reason phrase must be one line of latin-1; the body keeps the full text.
        reason = message.encode("ascii", "replace").decode()[:300]
        resp = Response(message + "\n", status=f"{status} {reason}", mimetype="text/plain")
    resp.headers.update(headers or {})
    return resp


@bp.errorhandler(CoreError)
def _core_error(exc: CoreError):
    """Every refusal, told the PyPI way; Retry-After and the like are kept, and a 401 carries
    the Basic challenge pip and twine know."""
    headers = {k: v for k, v in exc.headers.items() if v and k != "WWW-Authenticate"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    message = exc.message or "error"
    if exc.status == 403:
        message = f"Forbidden: {message}"
    return _error(exc.status, message, headers)


def unmatched(exc: HTTPException) -> Response:
    """A URL below the index that no route matches (404), or a method its route does not allow
    (405, with Allow), told the PyPI way; the app sends every such request here."""
    allow = getattr(exc, "valid_methods", None)
    return _error(exc.code or 404, exc.name, {"Allow": ", ".join(allow)} if allow else None)


# ---- authorization: what the routes' declarations mean here ----------------------------------


@kind("python-registry")
def _python_registry(_action, args) -> Target:
    """The registry's Python index. Registry tokens name project repositories, never this."""
    org, reg = args["org"], args["registry"]
    return Target(RegistryResource(org, reg), label=f"in {org}/{reg}")


@kind("python-project")
def _python_project(_action, args) -> Target:
    """One project: a registry token must name the OCI repository that holds its files."""
    org, reg = args["org"], args["registry"]
    claim = ("repository", repository(org, reg, normalize(args["project"])))
    return Target(RegistryResource(org, reg), claim, label=f"in {org}/{reg}")


@kind("python-upload")
def _python_upload(_action, args) -> Target:
    """An upload names its project in its body: the handler checks a token's claim then."""
    org, reg = args["org"], args["registry"]
    return Target(RegistryResource(org, reg), LATER, label=f"in {org}/{reg}")


def _target(org: str, registry: str) -> listing.Target:
    reg = find_registry(org, registry)
    if reg is None:  # the gate allows nothing on a missing registry; kept for the type checker
        raise not_found()
    return listing.Target(org, registry, reg)


# ---- upload ---------------------------------------------------------------------------------


@bp.route("", methods=["POST"])
@bp.route("/", methods=["POST"])
@requires("push", "python-upload")  # refused before a byte of the body is read
def upload(org: str, registry: str):
    """The legacy upload API. Never redirects: twine treats a redirect as a failure."""
    target = _target(org, registry)
    caller = current_caller()
    tmp = current_app.extensions["cargohold.settings"].data_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    # A commit point: no write transaction (on SQLite, the database's one write lock) may stay
    # open while a client streams a body at its own pace (a token's last use, a login's
    # cleared count).
    db.session.commit()
    # Spooled beside the blob store, on disk, and gone when closed whatever happens.
    with tempfile.TemporaryFile(dir=tmp, prefix="pypi-") as spool:
        form = read_upload(
            request.stream.read, request.headers.get("Content-Type"), spool, publish.MAX_FILE_SIZE
        )
        if caller.access is not None:
            require(
                "push",
                "python-project",
                org=org,
                registry=registry,
                project=form.get("name") or "-",
            )
        row, created = publish.upload(_blobstore(), target, form, spool, caller.principal)
    message = "OK" if created else f"OK: {row.filename} was already uploaded with this content"
    return Response(message + "\n", status=200, mimetype="text/plain")


# ---- Simple API -----------------------------------------------------------------------------


def _page(body: str | Page, content_type: str, last_modified, public: bool) -> Response:
    if not isinstance(body, Page):
        body = Page.of(body, content_type)
    resp = Response(body.body, content_type=simple.response_type(content_type))
    resp.headers["Vary"] = "Accept"
    resp.set_etag(body.etag)
    if last_modified is not None:
        resp.last_modified = last_modified.replace(tzinfo=UTC)
    # Revalidate every time: a yank must be seen at once, and the ETag makes that a 304.
    resp.cache_control.max_age = 0
    resp.cache_control.must_revalidate = True
    if public:
        resp.cache_control.public = True
    else:
        resp.cache_control.private = True
    return resp.make_conditional(request)


@bp.route("/simple", methods=["GET"])
@requires("pull", "python-registry")
def index_redirect(org: str, registry: str):
    return redirect(url_for("pypi.index", org=org, registry=registry), 301)


@bp.route("/simple/", methods=["GET"])
@requires("pull", "python-registry")
def index(org: str, registry: str):
    target = _target(org, registry)
    content_type = simple.negotiate(request.accept_mimetypes)
    body = root_page(target, content_type)
    return _page(body, content_type, listing.last_change(target), target.registry.public)


@bp.route("/simple/<project>", methods=["GET"])
@requires("pull", "python-project")
def project_redirect(org: str, registry: str, project: str):
    name = normalize(project)
    return redirect(url_for("pypi.project_page", org=org, registry=registry, project=name), 301)


@bp.route("/simple/<project>/", methods=["GET"])
@requires("pull", "python-project")
def project_page(org: str, registry: str, project: str):
    name = normalize(project)
    target = _target(org, registry)
    if name != project:
        # PEP 503: one URL per project, under its normalized name.
        return redirect(url_for("pypi.project_page", org=org, registry=registry, project=name), 301)
    proj = listing.project(target, name)
    files = listing.live_files(proj)
    if not files:
        raise not_found()
    views = [simple.file_view(f, name) for f in files]
    content_type = simple.negotiate(request.accept_mimetypes)
    if simple.is_json(content_type):
        body = simple.project_json(name, listing.versions(files), views)
    else:
        body = simple.project_html(name, views)
    return _page(body, content_type, proj.updated_at, target.registry.public)


# ---- files ----------------------------------------------------------------------------------


def _send_blob(digest: str, filename: str, public: bool) -> Response:
    blobstore = _blobstore()
    size = blobstore.stat(digest)
    if size is None:
        raise not_found()
    # Filenames are never reused, so a file's URL names the same bytes forever. The filename
    # goes in Content-Disposition, where clients take it from; uv reads wheels by ranges.
    cache = f"{'public' if public else 'private'}, max-age=31536000, immutable"
    return send_blob(blobstore, digest, size, cache, filename=filename)


@bp.route("/files/<project>/<filename>", methods=["GET"])
@requires("pull", "python-project")
def download(org: str, registry: str, project: str, filename: str):
    target = _target(org, registry)
    if filename.endswith(".metadata"):
        # PEP 658: `<file URL>.metadata` is the wheel's METADATA file.
        f = listing.find_file(target, project, filename.removesuffix(".metadata"))
        if f.filetype != "bdist_wheel":
            raise not_found()
        return _send_blob(f.metadata_digest, filename, target.registry.public)
    f = listing.find_file(target, project, filename)
    if refusal := file_refusal(f):
        raise Denied(refusal)
    if request.method == "GET":
        repository = target.repo_name(normalize(project)).full
        audit.downloaded(target.registry, org, repository, f.filename)
    return _send_blob(f.digest, f.filename, target.registry.public)


# ---- PEP 740: the Integrity API -------------------------------------------------------------


@bp.route("/integrity/<project>/<version>/<filename>/provenance", methods=["GET"])
@requires("pull", "python-project")
def provenance_object(org: str, registry: str, project: str, version: str, filename: str):
    """A file's provenance object, as PyPI's Integrity API serves it; 404 without one."""
    target = _target(org, registry)
    f = listing.find_file(target, normalize(project), filename)
    if not listing.same_version(f, version):
        raise not_found(f"No file {filename} in release {version} of {normalize(project)}")
    body = provenance.read(_blobstore(), f.provenance_sha256) if f.provenance_sha256 else None
    if body is None:
        raise not_found(f"No provenance available for {f.filename}")
    offers = request.accept_mimetypes
    json_type = provenance.INTEGRITY_MEDIA_TYPE
    if offers.quality("application/json") > offers.quality(json_type):
        json_type = "application/json"
    resp = Response(body, content_type=json_type)
    resp.headers["Vary"] = "Accept"
    # Attestations never change once a file is uploaded; the file's deletion takes them too.
    resp.cache_control.max_age = 0
    resp.cache_control.must_revalidate = True
    resp.set_etag(f.provenance_sha256 or "")
    if target.registry.public:
        resp.cache_control.public = True
    else:
        resp.cache_control.private = True
    return resp.make_conditional(request)


# ---- management: yank, unyank, delete -------------------------------------------------------


def _attestations_json(f: PythonFile) -> dict | None:
    if f.publisher is None:
        return None
    return {
        **f.publisher,
        "provenance": url_for(
            "pypi.provenance_object",
            org=request.view_args["org"],
            registry=request.view_args["registry"],
            project=f.project.name,
            version=f.version,
            filename=f.filename,
        ),
    }


def _file_json(f: PythonFile) -> dict:
    return {
        "filename": f.filename,
        "version": f.version,
        "filetype": f.filetype,
        "size": f.size,
        "sha256": f.sha256,
        "requires_python": f.requires_python,
        "uploaded_at": simple.upload_time(f.uploaded_at),
        "uploaded_by": f.uploaded_by,
        "yanked": f.yanked,
        "yanked_reason": f.yanked_reason,
        "deleted": f.deleted_at is not None,
        "manifest_digest": f.manifest_digest,
        # PEP 740: the publisher the attestations proved, how, and where the provenance is.
        "attestations": _attestations_json(f),
        # The CI workload (OIDC issuer, subject, repository and workflow claims) whose trust
        # policy the upload came through; null for people and access tokens.
        "workload_identity": f.workload_identity,
    }


def _reason() -> str | None:
    try:
        body = read_json_body() or {}
    except limits.TooLarge:
        raise
    except limits.InputRejected as exc:
        raise bad_request(f"Invalid JSON body: {exc}") from None
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise bad_request(f"reason must be a string of at most {MAX_REASON} characters")
    return reason or None


@bp.route("/projects/<project>", methods=["GET"])
@requires("pull", "python-project")
def project_detail(org: str, registry: str, project: str):
    name = normalize(project)
    target = _target(org, registry)
    files = listing.live_files(listing.project(target, name))
    return jsonify({"name": name, "files": [_file_json(f) for f in files]})


def _yank(org, registry, project, *, filename=None, version=None, yanked: bool):
    name = normalize(project)
    target = _target(org, registry)
    files = withdraw.set_yanked(
        target,
        name,
        filename=filename,
        version=version,
        yanked=yanked,
        reason=_reason() if yanked else None,
    )
    return jsonify({"files": [_file_json(f) for f in files]})


@bp.route("/projects/<project>/files/<filename>/yank", methods=["POST", "DELETE"])
@requires("push", "python-project")
def yank_file(org: str, registry: str, project: str, filename: str):
    return _yank(org, registry, project, filename=filename, yanked=request.method == "POST")


@bp.route("/projects/<project>/releases/<version>/yank", methods=["POST", "DELETE"])
@requires("push", "python-project")
def yank_release(org: str, registry: str, project: str, version: str):
    return _yank(org, registry, project, version=version, yanked=request.method == "POST")


@bp.route("/projects/<project>/files/<filename>", methods=["DELETE"])
@requires("delete", "python-project")
def delete_file(org: str, registry: str, project: str, filename: str):
    name = normalize(project)
    target = _target(org, registry)
    files = withdraw.delete(target, name, filename=filename)
    return jsonify({"files": [_file_json(f) for f in files]})


@bp.route("/projects/<project>/releases/<version>", methods=["DELETE"])
@requires("delete", "python-project")
def delete_release(org: str, registry: str, project: str, version: str):
    name = normalize(project)
    target = _target(org, registry)
    files = withdraw.delete(target, name, version=version)
    return jsonify({"files": [_file_json(f) for f in files]})
