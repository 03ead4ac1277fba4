"""Errors of the Python package API: a status and a reason, answered as PyPI does."""

from __future__ import annotations

from app.errors import CoreError


class PyPIError(CoreError):
    """A refusal. Its message becomes the HTTP reason phrase and the plain-text body.

    twine shows the reason phrase and `--skip-existing` looks for "already exist" in it, so the
    message is kept to one printable line.
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(" ".join(message.split()), headers=headers)
        self.status = status


def bad_request(message: str) -> PyPIError:
    return PyPIError(400, message)


def not_found(message: str = "Not Found") -> PyPIError:
    return PyPIError(404, message)
