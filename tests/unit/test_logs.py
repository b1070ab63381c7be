"""The log lines themselves: JSON with the ids held in context (the request id above all), the
request id taken or made at the edge and answered, and anything shaped like a credential
redacted on its way out."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway import logs

# A real token's shape (header.payload.signature), made up.
A_JWT = (
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImRlZmF1bHQiLCJ0eXAiOiJKV1QifQ"
    ".eyJzdWIiOiJ0aWxsLTciLCJyb2xlIjoicG9zIn0"
    ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbi0wMTIzNDU2Nzg5"
)


class Captured:
    """Lines written through the app's own handler (formatter and filters), as JSON."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured()
    handler = logs.handler(capture.stream)
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield capture
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


log = logging.getLogger("tests.logs")


# --- ids held in context --------------------------------------------------------------------------


def test_a_line_carries_the_ids_bound_around_it(captured: Captured) -> None:
    with logs.bound(request_id="req-1"), logs.bound(reservation_id="r-9", store_id=None):
        log.info("ready", extra={"store_id": "S001"})
    log.info("after")

    inside, after = captured.lines
    assert (inside["event"], inside["request_id"], inside["reservation_id"]) == (
        "ready",
        "req-1",
        "r-9",
    )
    assert inside["store_id"] == "S001"
    assert "request_id" not in after
    assert "reservation_id" not in after


def test_an_id_given_at_the_call_wins_over_the_one_in_context(captured: Captured) -> None:
    with logs.bound(store_id="S001"):
        log.info("moved", extra={"store_id": "S002"})

    assert captured.lines[0]["store_id"] == "S002"


def test_the_text_formatter_shows_the_ids_too() -> None:
    stream = io.StringIO()
    handler = logs.handler(stream, json_lines=False)
    record = logging.makeLogRecord({"name": "t", "msg": "ready", "levelname": "INFO"})
    with logs.bound(request_id="req-1"):
        handler.handle(record)

    assert stream.getvalue().rstrip().endswith("ready request_id=req-1")


# --- the request id at the edge -----------------------------------------------------------------


def scope_with(request_id: bytes | None) -> dict[str, Any]:
    headers = [(b"x-request-id", request_id)] if request_id is not None else []
    return {"type": "http", "headers": headers}


@pytest.mark.parametrize("sane", ["abc123", "a1b2-c3d4.e5:f6_7", "7" * 64])
def test_a_sane_request_id_from_the_caller_is_kept(sane: str) -> None:
    assert logs.request_id_of(scope_with(sane.encode())) == sane


@pytest.mark.parametrize(
    "insane",
    [b"", b" ", b"7" * 65, b"two words", b"line\r\nbreak", b"-leading-dash", b"caf\xc3\xa9", b"{}"],
)
def test_any_other_request_id_is_replaced_by_one_of_ours(insane: bytes) -> None:
    made = logs.request_id_of(scope_with(insane))

    assert made != insane.decode("latin-1")
    assert len(made) == 32
    assert int(made, 16) >= 0


def test_without_a_header_a_request_id_is_made() -> None:
    assert len(logs.request_id_of(scope_with(None))) == 32


def logging_app() -> Starlette:
    async def endpoint(request: Request) -> PlainTextResponse:
        log.info("handled")
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/", endpoint)], middleware=[Middleware(logs.RequestIdMiddleware)]
    )


async def test_the_middleware_answers_with_the_id_it_logged_under(captured: Captured) -> None:
    transport = httpx.ASGITransport(app=logging_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        given = await client.get("/", headers={"X-Request-Id": "from-the-caller-1"})
        made = await client.get("/")

    assert given.headers["x-request-id"] == "from-the-caller-1"
    assert len(made.headers["x-request-id"]) == 32
    assert [line["request_id"] for line in captured.lines] == [
        "from-the-caller-1",
        made.headers["x-request-id"],
    ]


# --- redaction --------------------------------------------------------------------------------


def test_a_token_in_the_message_is_redacted(captured: Captured) -> None:
    log.info("got %s", A_JWT)

    assert A_JWT not in captured.text
    assert captured.lines[0]["event"] == f"got {logs.REDACTED}"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Basic"])
def test_a_credential_after_its_scheme_is_redacted(captured: Captured, scheme: str) -> None:
    log.warning("header was", extra={"header": f"{scheme} opaque-credential-0123456789"})

    assert "opaque-credential-0123456789" not in captured.text
    assert captured.lines[0]["header"] == f"{scheme} {logs.REDACTED}"


@pytest.mark.parametrize(
    "key", ["authorization", "secret", "jwt_secret", "token", "x_shopify_hmac_signature"]
)
def test_an_extra_named_like_a_secret_is_redacted(captured: Captured, key: str) -> None:
    log.info("settings", extra={key: "plain-value-nobody-should-read"})

    assert "plain-value-nobody-should-read" not in captured.text
    assert captured.lines[0][key] == logs.REDACTED


def test_a_token_in_an_exception_is_redacted(captured: Captured) -> None:
    try:
        raise ValueError(f"refused {A_JWT}")
    except ValueError:
        log.exception("failed")

    assert A_JWT not in captured.text
    assert "ValueError: refused [redacted]" in captured.lines[0]["exception"]


def test_ids_and_ordinary_words_are_left_alone(captured: Captured) -> None:
    log.info(
        "reserved",
        extra={"reservation_id": "0b8e0d2c-5b0f-4d7e-9b59-2f5a0c3e7d11", "note": "bearer of news"},
    )

    line = captured.lines[0]
    assert line["reservation_id"] == "0b8e0d2c-5b0f-4d7e-9b59-2f5a0c3e7d11"
    assert line["note"] == "bearer of news"


def test_the_query_string_of_an_access_line_is_left_out() -> None:
    stream = io.StringIO()
    handler = logs.handler(stream)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", '/graphql?query={scanPickup(code:"K7Q2M9")}', "1.1", 405),
        None,
    )
    handler.handle(record)

    event = json.loads(stream.getvalue())["event"]
    assert "K7Q2M9" not in event
    assert event == '127.0.0.1:5000 - "GET /graphql?… HTTP/1.1" 405'
