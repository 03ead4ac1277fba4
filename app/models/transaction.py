"""The unit of work: one transaction per request, CLI command or worker run.

Core functions add, change and flush; they never commit. Whoever started the work commits it
once at its end: the app commits each request whose view returns and rolls back one whose
view raises (`app.web.unit_of_work_per_request`); CLI commands and workers wrap their work in
`unit_of_work()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.models.base import db


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block did when it succeeds; roll it all back when it raises."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
