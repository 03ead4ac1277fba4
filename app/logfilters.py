"""Log records gunicorn writes that mislead more than they inform.

Clients told a registry is insecure (podman and skopeo with `--tls-verify=false`, containerd,
helm) still try TLS first and fall back to plain HTTP when the handshake fails. gunicorn reads
the ClientHello as a malformed request line and logs a warning, `Invalid request from ip=...`,
on every push and pull. Those probes are logged at debug level, under a name that says what they
are; any other malformed request keeps its warning.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

# A TLS record carrying a handshake message starts with content type 22, then version 3.x.
TLS_HANDSHAKE = b"\x16\x03"
GUNICORN_ERROR_LOG = "gunicorn.error"


def _tls_bytes_in(tb: TracebackType | None) -> bool:
    """Whether the parser that raised was reading a TLS record: the bytes it read are in the
    frames of the exception being handled, as locals."""
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, bytes | bytearray) and value[:2] == TLS_HANDSHAKE:
                return True
        tb = tb.tb_next
    return False


class TLSProbeFilter(logging.Filter):
    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not str(record.msg).startswith("Invalid request"):
            return True
        if not _tls_bytes_in(sys.exc_info()[2]):
            return True
        if not self.logger.isEnabledFor(logging.DEBUG):
            return False
        ip = str(record.msg).removeprefix("Invalid request from ip=").split(":", 1)[0]
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg = "TLS handshake from ip=%s on the plain-HTTP port: closed"
        record.args = (ip,)
        return True


def quiet_tls_probes() -> None:
    """Install the filter on gunicorn's error log; harmless where gunicorn is not running."""
    logger = logging.getLogger(GUNICORN_ERROR_LOG)
    if not any(isinstance(f, TLSProbeFilter) for f in logger.filters):
        logger.addFilter(TLSProbeFilter(logger))
