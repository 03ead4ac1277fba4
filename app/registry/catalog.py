"""The catalog: repository names a principal may pull, in lexical order."""

from __future__ import annotations

from sqlalchemy import select

from app.access import Principal
from app.access.policy import visible_registries
from app.models import Repository, db
from app.models.ordering import bytewise


def visible_names(principal: Principal, last: str | None, limit: int | None) -> list[str]:
    # "+ 0": the registry filter must not pick the registry index, which would sort every
    # repository of the visible registries for each page; walking the name index in order and
    # stopping at the page's end is what keeps pages flat with the catalog's size.
    query = (
        select(Repository.name)
        .where((Repository.registry_id + 0).in_(visible_registries(principal)))
        .order_by(bytewise(Repository.name))
    )
    if last:
        query = query.where(bytewise(Repository.name) > last)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.execute(query).scalars())
