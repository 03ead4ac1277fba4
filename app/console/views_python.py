"""A Python project: releases newest first, files, core metadata, the description rendered
safely as PyPI renders it, yank / unyank / delete for writers, and the install command."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from packaging.metadata import parse_email
from packaging.version import Version
from readme_renderer import markdown, rst, txt

from app.access import authorize
from app.access.policy import RegistryResource, find_registry
from app.console import session as console_session
from app.console.gate import page
from app.console.templating import base_url, notice
from app.pypi import store
from app.pypi.distributions import MAX_METADATA
from app.pypi.errors import PyPIError
from app.pypi.names import normalize
from app.registry.errors import RegistryError

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
    except (OSError, RegistryError):
        return {}
    if len(data) > MAX_METADATA:
        return {}
    raw, _unparsed = parse_email(data)
    return dict(raw)


def _target(org: str, registry: str) -> store.Target:
    return store.Target(org, registry, find_registry(org, registry))


@page("/orgs/<org>/<registry>/python/<project>", "pull", "registry")
def python_project(org: str, registry: str, project: str):
    name = normalize(project)
    if name != project:
        return redirect(url_for("console.python_project", org=org, registry=registry, project=name))
    target = _target(org, registry)
    try:
        files = store.live_files(store.project(target, name))
    except PyPIError:
        files = []
    if not files:
        abort(404)
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
    principal = console_session.current_principal()
    resource = RegistryResource(org, registry)
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
        may_push=authorize(principal, "push", resource),
        may_delete=authorize(principal, "delete", resource),
        index=index,
        public=target.registry.public,
    )


def _back(org: str, registry: str, project: str, version: str | None = None):
    return redirect(
        url_for(
            "console.python_project", org=org, registry=registry, project=project, version=version
        )
    )


@page(
    "/orgs/<org>/<registry>/python/<project>/files/<filename>/<any(yank,unyank):how>",
    "push",
    "registry",
    methods=("POST",),
)
def yank_file(org: str, registry: str, project: str, filename: str, how: str):
    reason = request.form.get("reason", "").strip()[:MAX_REASON] or None
    try:
        files = store.set_yanked(
            _target(org, registry), project, filename=filename, yanked=how == "yank", reason=reason
        )
    except PyPIError:
        notice(f"No file {filename!r} in {project}.", "error")
        return _back(org, registry, project)
    notice(f"{filename} {'yanked' if how == 'yank' else 'is no longer yanked'}.")
    return _back(org, registry, project, files[0].version)


@page(
    "/orgs/<org>/<registry>/python/<project>/files/<filename>/delete",
    "delete",
    "registry",
    methods=("POST",),
)
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
    try:
        store.delete(_target(org, registry), project, filename=filename)
    except PyPIError:
        notice(f"No file {filename!r} in {project}.", "error")
        return _back(org, registry, project)
    notice(f"Deleted {filename}. Its name can never be uploaded again.")
    if not store.live_files(store.project(_target(org, registry), normalize(project))):
        return redirect(url_for("console.registry", org=org, registry=registry))
    return _back(org, registry, project)
