"""Structured logs: one JSON object per line, with the ids (reservation, store, request) as keys.

The request id: `RequestIdMiddleware` takes the caller's `X-Request-Id` when it is a sane short
token (else makes one), answers with it, and holds it in a context variable while the request
(or the WebSocket) is served; `ContextIds` stamps it, and any other id `bound` in that context,
on every record emitted meanwhile, whichever logger emits it.

No secrets: what is logged is chosen at the source (ids, never tokens, bodies or contact data);
`redact` is a second belt, applied to every formatted line, for what is obviously a credential
(a JWT, a bearer header, a key named like a secret)."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}

REQUEST_ID_HEADER = "X-Request-Id"
# What a caller's id may be to be kept (anything else, e.g. a line break or a megabyte, is
# replaced by one of ours): a short token of letters, digits and . _ : -
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_ids: ContextVar[Mapping[str, str]] = ContextVar("ropos_log_ids", default=_EMPTY)


# --- ids held in context --------------------------------------------------------------------------


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Every record emitted inside carries these ids (None: left out), besides those already
    bound around it."""
    token = _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


def context_ids() -> Mapping[str, str]:
    return _ids.get()


class ContextIds(logging.Filter):
    """Stamps the ids held in context on each record (an id the call site gave in `extra` wins).
    On the handler, so that it sees the records of every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _ids.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class NoQueryStrings(logging.Filter):
    """uvicorn's access lines without the query string: a GET may carry a query's variables (a
    pickup code, a customer's id), and the line is kept long after the request."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            if isinstance(path, str) and "?" in path:
                record.args = (client, method, path.split("?", 1)[0] + "?…", version, status)
        return True


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-Id when it is sane, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1").strip()
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Pure ASGI (no task of its own, so the context variable is the request's): binds the
    request id for as long as the request or the WebSocket is served, and answers with it in the
    X-Request-Id header (of the response, or of the WebSocket's accept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        with bound(request_id=request_id):
            await self.app(scope, receive, send_with_id)


# --- redaction ------------------------------------------------------------------------------------

REDACTED = "[redacted]"
# A JWT (three base64url parts, the first a JSON header), and a bearer credential.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# Keys of `extra` whose value is never logged, whatever it is.
_SECRET_KEYS = ("secret", "password", "authorization", "token", "cookie", "signature", "api_key")


def redact(line: str) -> str:
    """The line with anything shaped like a token or a bearer credential replaced."""
    if "eyJ" in line:
        line = _JWT.sub(REDACTED, line)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", line)


def _safe(key: str, value: object) -> object:
    lowered = key.lower()
    return REDACTED if any(word in lowered for word in _SECRET_KEYS) else value


def _as_is(key: str, value: object) -> object:
    return value


# --- formatters -----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line. `redacting` False leaves out the second belt: the tests read
    what the call sites themselves wrote."""

    def __init__(self, *, redacting: bool = True) -> None:
        super().__init__()
        self.redacting = redacting

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        safe = _safe if self.redacting else _as_is
        entry.update({k: safe(k, v) for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = json.dumps(entry, default=str)
        return redact(line) if self.redacting else line


class TextFormatter(logging.Formatter):
    """For a person at a terminal (ROPOS_LOG_JSON=false): the line, then the ids as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{k}={_safe(k, v)}" for k, v in vars(record).items() if k not in _STANDARD]
        return redact(" ".join([line, *extras]))


def handler(
    stream: IO[str] | None = None, *, json_lines: bool = True, redacting: bool = True
) -> logging.Handler:
    """The handler every process logs through: the formatter, the ids held in context."""
    made = logging.StreamHandler(stream or sys.stderr)
    made.setFormatter(JsonFormatter(redacting=redacting) if json_lines else TextFormatter())
    made.addFilter(ContextIds())
    made.addFilter(NoQueryStrings())
    return made


def configure(level: str = "INFO", *, json_lines: bool = True) -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler(json_lines=json_lines)]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # One line per outgoing request (POS webhooks, the WMS) is noise; failures are logged by us.
    logging.getLogger("httpx").setLevel(logging.WARNING)
