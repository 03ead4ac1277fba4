"""Log output: plain lines by default, one JSON object a line with CARGOHOLD_LOG_FORMAT=json.

Every record written while a request is served carries that request's id."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("cargohold_request_id", default=None)

ACCESS = logging.getLogger("cargohold.access")
# The request facts an access record carries, in the order a JSON line lists them.
FIELDS = (
    "request_id",
    "remote_addr",
    "method",
    "path",
    "route",
    "status",
    "bytes_sent",
    "bytes_received",
    "duration_ms",
    "user",
    "org",
    "repository",
    "digest",
    "user_agent",
)
# Loggers this application writes to: its own and Flask's (named after the package).
OWN_LOGGERS = ("cargohold", "app")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None) or request_id.get()
        return f"{line} request_id={rid}" if rid and record.name != ACCESS.name else line


def configure(log_format: str) -> None:
    """Install one stderr handler on the application's loggers (again on a second app: the
    latest format wins, nothing is written twice)."""
    if log_format not in ("text", "json"):
        raise ValueError(f"CARGOHOLD_LOG_FORMAT={log_format!r}: use text or json")
    handler = logging.StreamHandler(sys.stderr)
    handler._cargohold = True  # type: ignore[attr-defined]
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(_TextFormatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    for name in OWN_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "_cargohold", False)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    ACCESS.handlers, ACCESS.propagate = [], True
    # Access lines are complete sentences in text form: the combined-log style, no prefix.
    if log_format == "text":
        plain = logging.StreamHandler(sys.stderr)
        plain._cargohold = True  # type: ignore[attr-defined]
        plain.setFormatter(logging.Formatter("%(message)s"))
        ACCESS.handlers = [plain]
        ACCESS.propagate = False
