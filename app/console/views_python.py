"""A Python project: releases newest first, files, core metadata, the description rendered
safely as PyPI renders it, yank / unyank / delete for writers, and the install command."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from packaging.metadata import parse_email
from packaging.version import Version
from readme_renderer import markdown, rst, txt

from app.access.policy import find_registry
from app.console import vulnerabilities
from app.console.blueprint import bp, form_of
from app.console.templating import base_url, notice
from app.errors import NotFound
from app.gate import permits, requires
from app.registry.python import files as listing
from app.registry.python import withdraw
from app.registry.python.files import MAX_METADATA
from app.registry.python.names import normalize

MAX_REASON = 1024


def render_description(body: str, content_type: str | None) -> str | None:
    """Sanitized HTML (readme_renderer cleans it with nh3), or None when it will not render."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "text/markdown":
        variant = "GFM"
        for part in (content_type or "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == "variant" and value.strip() in ("GFM", "CommonMark"):
                variant = value.strip()
        return markdown.render(body, variant=variant)
    if kind == "text/plain":
        return txt.render(body)
    # PyPI's default for a missing or reStructuredText type; plain text when it does not parse.
    return rst.render(body) or txt.render(body)


def _metadata(digest: str) -> dict:
    blobstore = current_app.extensions["cargohold.store"]
    try:
        with blobstore.open(digest) as f:
            data = f.read(MAX_METADATA + 1)
    except OSError:
        return {}
    if len(data) > MAX_METADATA:
        return {}
    raw, _unparsed = parse_email(data)
    return dict(raw)


def _target(org: str, registry: str) -> listing.Target:
    found = find_registry(org, registry)
    if found is None:  # the gate allows nothing on a missing registry; kept for the type checker
        raise NotFound(f"no registry {org}/{registry}")
    return listing.Target(org, registry, found)


@bp.route("/orgs/<org>/<registry>/python/<project>")
@requires("pull", "registry")
def python_project(org: str, registry: str, project: str):
    name = normalize(project)
    if name != project:
        return redirect(url_for("console.python_project", org=org, registry=registry, project=name))
    target = _target(org, registry)
    found = listing.find_project(target, name)
    files = listing.live_files(found) if found is not None else []
    if not files:
        raise NotFound(f"no project {name!r} in {org}/{registry}")
    releases: dict[str, list] = {}
    for f in sorted(files, key=lambda f: (Version(f.version), f.filename), reverse=True):
        releases.setdefault(f.version, []).append(f)
    wanted = request.args.get("version")
    # As on PyPI: the newest release with a file not yanked, unless another is asked for.
    current = next((v for v, fs in releases.items() if not all(f.yanked for f in fs)), None)
    version = wanted if wanted in releases else current or next(iter(releases))
    chosen = releases[version]
    meta = _metadata(chosen[0].metadata_digest)
    description = meta.get("description") or ""
    content_type = meta.get("description_content_type")
    html = render_description(description, content_type) if description else None
    index = f"{base_url()}/api/v1/{org}/{registry}/python/simple/"
    return render_template(
        "console/python_project.html",
        org=org,
        registry=registry,
        name=name,
        releases=releases,
        version=version,
        files=chosen,
        meta=meta,
        description_html=html,
        may_push=permits("push", "registry", org=org, registry=registry),
        may_delete=permits("delete", "registry", org=org, registry=registry),
        index=index,
        public=target.registry.public,
        vulns=vulnerabilities.for_files(target.registry.id, chosen),
    )


def _back(org: str, registry: str, project: str, version: str | None = None):
    return redirect(
        url_for(
            "console.python_project", org=org, registry=registry, project=project, version=version
        )
    )


@bp.route(
    "/orgs/<org>/<registry>/python/<project>/files/<filename>/<any(yank,unyank):how>",
    methods=["POST"],
)
@requires("push", "registry")
@form_of("console.python_project")
def yank_file(org: str, registry: str, project: str, filename: str, how: str):
    reason = request.form.get("reason", "").strip()[:MAX_REASON] or None
    files = withdraw.set_yanked(
        _target(org, registry), project, filename=filename, yanked=how == "yank", reason=reason
    )
    notice(f"{filename} {'yanked' if how == 'yank' else 'is no longer yanked'}.")
    return _back(org, registry, project, files[0].version)


@bp.route("/orgs/<org>/<registry>/python/<project>/files/<filename>/delete", methods=["POST"])
@requires("delete", "registry")
@form_of("console.python_project")
def delete_file(org: str, registry: str, project: str, filename: str):
    if request.form.get("confirm") != "yes":
        return render_template(
            "console/confirm.html",
            kind="file",
            what=filename,
            org=org,
            registry=registry,
            repo=None,
            action=request.path,
        )
    target = _target(org, registry)
    withdraw.delete(target, project, filename=filename)
    notice(f"Deleted {filename}. Its name can never be uploaded again.")
    if not listing.live_files(listing.project(target, normalize(project))):
        return redirect(url_for("console.registry", org=org, registry=registry))
    return _back(org, registry, project)
