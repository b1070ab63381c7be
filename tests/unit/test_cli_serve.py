"""What `ropos serve` hands uvicorn: the WebSocket message limit is the GraphQL one, so that a
frame over it is refused by the server before it is buffered whole."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from gateway import cli


@pytest.fixture
def uvicorn_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """uvicorn.run replaced by a recorder; the root logger put back as it was afterwards
    (`serve` configures logging for the process)."""
    for name in list(os.environ):
        if name.upper().startswith("ROPOS_"):
            monkeypatch.delenv(name)
    called: dict[str, Any] = {}

    def run(app: object, **options: Any) -> None:
        called.update(options)

    monkeypatch.setattr(uvicorn, "run", run)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield called
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_serve_caps_websocket_messages_at_the_graphql_limit(
    uvicorn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROPOS_GRAPHQL_MAX_BYTES", "65536")

    cli.main(["serve", "--port", "0"])

    assert uvicorn_run["ws_max_size"] == 65536


def test_serve_caps_websocket_messages_by_default(uvicorn_run: dict[str, Any]) -> None:
    cli.main(["serve", "--port", "0"])

    assert uvicorn_run["ws_max_size"] == 256 * 1024
