"""The catalog: repository names a principal may pull, in lexical order."""

from __future__ import annotations

from sqlalchemy import or_, select

from app.access import Principal
from app.models import Membership, Registry, Repository, db


def visible_names(principal: Principal, last: str | None, limit: int | None) -> list[str]:
    member_orgs = select(Membership.organisation_id).where(
        Membership.user_id == (principal.user_id or -1)
    )
    query = (
        select(Repository.name)
        .join(Registry, Registry.id == Repository.registry_id)
        .where(or_(Registry.public.is_(True), Registry.organisation_id.in_(member_orgs)))
        .order_by(Repository.name)
    )
    if last:
        query = query.where(Repository.name > last)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.execute(query).scalars())
