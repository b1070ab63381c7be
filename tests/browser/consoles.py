"""What the browser tests do with the consoles: open one in a fresh browser context (phone-sized
for /shop, a till's screen for /pos and /ops), sign in the way a person does (the token pasted
into the sign-in form), drop and restore a page's WebSocket, run the vendored axe-core on a page,
and call the API directly for what happens elsewhere (a channel's order, a scanner's reading)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    ViewportSize,
    WebSocketRoute,
    expect,
)

from domain.access import Role
from tests.api.conftest import Gateway, Result, gql

PHONE = ViewportSize(width=390, height=844)
TILL = ViewportSize(width=1280, height=900)
AXE_URL = "/consoles/static/vendor/axe.min.js"
# What a browser may log while a test cuts a page's socket on purpose (the socket's own
# failure); any other console error, and every uncaught exception, fails the test.
_EXPECTED_NOISE = re.compile(r"WebSocket connection to .* failed|net::ERR_")
SERIOUS = ("serious", "critical")
TIMES = "\N{MULTIPLICATION SIGN}"  # how the consoles write "2 x SKU-1"


@dataclass
class Socket:
    """The WebSockets of one page, passed through to the gateway until `drop()`: then the open
    ones are closed as a server going away closes them (1001) and new ones are turned away the
    same way until `restore()`."""

    cut: bool = False
    open: list[WebSocketRoute] = field(default_factory=list)
    refused: int = 0

    async def route(self, ws: WebSocketRoute) -> None:
        if self.cut:
            self.refused += 1
            await ws.close(code=1001, reason="going away")
            return
        ws.connect_to_server()
        self.open.append(ws)

    async def drop(self) -> None:
        self.cut = True
        dropped, self.open = self.open, []
        for ws in dropped:
            await ws.close(code=1001, reason="going away")

    def restore(self) -> None:
        self.cut = False


@dataclass
class Consoles:
    gateway: Gateway
    browser: Browser
    http: httpx.AsyncClient
    contexts: list[BrowserContext] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    def token(self, role: Role | str, *, sub: str | None = None, store: str | None = None) -> str:
        return self.gateway.token(role, sub=sub, store=store)

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Result:
        return await gql(self.http, self.gateway, query, variables, token)

    async def ok(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        return (await self.gql(query, variables, token)).ok()

    async def open(
        self,
        path: str,
        token: str | None = None,
        *,
        viewport: ViewportSize = TILL,
        socket: Socket | None = None,
        **context_options: Any,
    ) -> Page:
        """A new context (its own sessionStorage) with one page at `path`; signed in with
        `token` through the sign-in form when one is given."""
        context = await self.browser.new_context(
            viewport=viewport, base_url=self.url, **context_options
        )
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: self.script_errors.append(f"{path}: {error}"))
        page.on("console", lambda message: self._console(path, message))
        if socket is not None:
            await page.route_web_socket(re.compile(r".*/graphql$"), socket.route)
        await page.goto(path)
        if token is not None:
            await self.sign_in(page, token)
        return page

    def _console(self, path: str, message: ConsoleMessage) -> None:
        if message.type == "error" and not _EXPECTED_NOISE.search(message.text):
            self.script_errors.append(f"{path}: console error: {message.text}")

    @staticmethod
    async def sign_in(page: Page, token: str) -> None:
        await page.get_by_label("Token").fill(token)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    async def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Error):  # already gone with the browser
                await context.close()
        self.contexts.clear()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core (vendored, served by the gateway itself, so
    the pages' Content-Security-Policy lets it run) finds on the page as it stands, WCAG 2.2 A
    and AA rules and axe's best practices."""
    if not await page.evaluate("() => typeof axe !== 'undefined'"):  # once per document
        await page.add_script_tag(url=AXE_URL)
    results: dict[str, Any] = await page.evaluate(
        """() => axe.run(document, {
            runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                             "wcag22aa", "best-practice"] },
            resultTypes: ["violations"],
        })"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]],
        }
        for v in results["violations"]
        if v["impact"] in SERIOUS
    ]
