"""Logging set-up (``PDP_LOG_FORMAT=text|json``) and the request id every log record carries.

:data:`REQUEST_ID` holds the ``X-Request-ID`` of the request being handled (set by
:class:`pdp.http.middleware.ObservabilityMiddleware`; None outside a request or when the client
sent none: no id is invented). :class:`RequestIdFilter`, installed on the handler, copies it
onto every record as ``request_id``, so a line logged while handling a request, by any
logger, says which request it was about. :func:`configure_logging` is called once at the edge
(``app_from_environment`` in each worker, ``pdp serve``); it routes uvicorn's loggers through
the same handler, except uvicorn's access log, which stays off (``pdp serve`` runs uvicorn
with ``access_log=False``: a line per request would cost more than a cached decision, and the
decision log records what was decided).
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from pdp.settings import Settings

__all__ = ["REQUEST_ID", "RequestIdFilter", "SafeTextFormatter", "configure_logging",
           "escape_text", "make_handler"]

REQUEST_ID: ContextVar[str | None] = ContextVar("pdp_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
_ACCESS = "uvicorn.access"


# C0 controls and DEL, C1 controls, the line and paragraph separators and the bidirectional
# formatting characters (Unicode TR9: embeddings, overrides, isolates, marks).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                     "\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """``text`` with control, C1, line-separator and bidi characters written as ``\\xNN`` /
    ``\\uNNNN``: one log record stays one line and reads as it is."""
    return _UNSAFE.sub(_escape, text)


class SafeTextFormatter(logging.Formatter):
    """The text format, with the message escaped (:func:`escape_text`): a value from a
    request (a percent-decoded path, a JSON-RPC method, a context value) cannot start a line
    of its own or hide itself with terminal or bidi controls. Tracebacks keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_text(record.message)
        return super().formatMessage(record)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (None when unknown) to every record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class _PDPHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed (replaced, never stacked, on a second call)."""


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    handler = _PDPHandler(stream if stream is not None else sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level",
                                                                        "name": "logger"}))
    else:
        handler.setFormatter(SafeTextFormatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """One handler on the root logger in the configured format; uvicorn's loggers propagate
    to it (pass ``log_config=None`` to uvicorn so that it leaves them alone)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PDPHandler)]:
        root.removeHandler(old)
    root.addHandler(make_handler(settings.log_format, stream))
    root.setLevel(settings.log_level.upper())
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger(_ACCESS)
    access.handlers.clear()
    access.propagate = False
