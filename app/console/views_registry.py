"""A registry: its repositories (paged, sorted, filtered), its Python projects, and the Connect
panel with commands for every client."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import func, select

from app.access import ORG_READ
from app.access.policy import find_registry
from app.console import retention as retention_panel
from app.console import session as console_session
from app.console.blueprint import bp
from app.console.connect import snippets
from app.console.pagination import pager
from app.console.templating import base_url, host
from app.gate import permits, requires
from app.models import Manifest, PythonFile, PythonProject, Repository, Tag, db
from app.registry import quotas
from app.registry.python.names import NAMESPACE
from app.registry.signing import keys as signing_keys

SORTS = ("name", "pushed")


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _activity(repo_ids):
    """Tag count and last push per repository, for the repositories `repo_ids` selects."""
    tags = (
        select(
            Tag.repository_id.label("rid"),
            func.count(Tag.id).label("tags"),
            func.max(Tag.updated_at).label("tagged"),
        )
        .where(Tag.repository_id.in_(repo_ids))
        .group_by(Tag.repository_id)
        .subquery()
    )
    pushed = (
        select(Manifest.repository_id.label("rid"), func.max(Manifest.created_at).label("pushed"))
        .where(Manifest.repository_id.in_(repo_ids))
        .group_by(Manifest.repository_id)
        .subquery()
    )
    return tags, pushed


def repository_rows(registry_id: int, q: str, sort: str, offset: int, limit: int) -> list:
    """One query: each repository of the page with its tag count and last push. Sorted by name,
    only the page's repositories are aggregated; by last push, those of this registry."""
    scope = select(Repository.id).where(Repository.registry_id == registry_id)
    if q:
        scope = scope.where(Repository.name.like(f"%{escape_like(q)}%", escape="\\"))
    if sort == "name":
        scope = scope.order_by(Repository.name).offset(offset).limit(limit)
        ids = list(db.session.execute(scope).scalars())
        tags, pushed = _activity(ids)
        order = (Repository.name,)
        where = Repository.id.in_(ids)
    else:
        tags, pushed = _activity(scope.scalar_subquery())
        where = Repository.id.in_(scope.scalar_subquery())
    last = func.coalesce(tags.c.tagged, pushed.c.pushed)
    query = (
        select(Repository.name, func.coalesce(tags.c.tags, 0), last.label("last"))
        .outerjoin(tags, tags.c.rid == Repository.id)
        .outerjoin(pushed, pushed.c.rid == Repository.id)
        .where(where)
    )
    if sort == "name":
        return db.session.execute(query.order_by(*order)).all()
    query = query.order_by(last.desc(), Repository.name).offset(offset).limit(limit)
    return db.session.execute(query).all()


@bp.route("/orgs/<org>/<registry>")
@requires("pull", "registry")
def registry(org: str, registry: str):
    reg = find_registry(org, registry)
    q = request.args.get("q", "").strip()[:100]
    sort = request.args.get("sort", "name")
    sort = sort if sort in SORTS else "name"
    pg = pager()
    rows, more = pg.window(repository_rows(reg.id, q, sort, pg.offset, pg.per_page + 1))
    prefix = f"{org}/{registry}/"
    repos = [
        {"path": name[len(prefix) :], "tags": count, "last": last} for name, count, last in rows
    ]
    live = select(PythonFile.project_id).where(PythonFile.deleted_at.is_(None))
    projects = list(
        db.session.execute(
            select(PythonProject.name)
            .where(PythonProject.registry_id == reg.id, PythonProject.id.in_(live))
            .order_by(PythonProject.name)
            .limit(200)
        ).scalars()
    )
    me = console_session.current_user()
    can_push = permits("push", "registry", org=org, registry=registry)
    # The registry's signing keys, for those who manage them (/api/v1 changes them).
    is_admin = permits("org:admin", "org", org=org)
    # Storage figures are the organisation's business: its members see them, the public not.
    usage = quotas.usage(quotas.REGISTRY, reg.id) if permits(ORG_READ, "org", org=org) else None
    return render_template(
        "console/registry.html",
        org=org,
        reg=reg,
        repos=repos,
        q=q,
        sort=sort,
        pg=pg,
        more=more,
        projects=projects,
        pypi_namespace=NAMESPACE,
        can_push=can_push,
        signing_keys=signing_keys.of_registry(reg.id) if is_admin else None,
        signing_policy=signing_keys.find_policy(reg.id) if is_admin else None,
        usage=usage,
        snippets=snippets(base_url(), host(), org, registry, me.username if me else ""),
        insecure=base_url().startswith("http://"),
        retention=retention_panel.panel(org, reg, request.args.get("retention") == "report"),
    )
