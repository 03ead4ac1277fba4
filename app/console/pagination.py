"""Pages of 50, from a `page` query parameter that bad input cannot break."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

PER_PAGE = 50


@dataclass(frozen=True)
class Pager:
    page: int
    per_page: int = PER_PAGE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def window(self, rows: list) -> tuple[list, bool]:
        """Rows fetched with limit per_page + 1: this page's rows and whether more follow."""
        return rows[: self.per_page], len(rows) > self.per_page


def pager(param: str = "page") -> Pager:
    raw = request.args.get(param, "1")
    page = int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1
    return Pager(max(1, page))
