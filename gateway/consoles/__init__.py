"""The consoles: /shop (the shopper, on a phone), /pos (a store's till) and /ops (operations).

Each is a server-rendered page shell (Jinja2) and a script of its own. The scripts talk to the
public GraphQL API and nothing else, over HTTP and the graphql-transport-ws WebSocket at
/graphql, with the tokens, roles and errors any client gets: the consoles have no private
endpoint and never touch the database, so they prove the API is enough to run a store with.

Every third-party file they load is vendored under static/vendor and listed, with its licence
and sha256, in static/vendor/MANIFEST.json (tests/unit/test_consoles_vendor.py checks it): the
pages load nothing from another origin, so they work offline and a Content-Security-Policy of
'self' alone holds them (no inline script or style: the JavaScript and CSS are files)."""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/consoles/static"

# Only this origin, for everything: scripts and styles from files (no inline code, no eval),
# the API and its WebSocket ('self' covers ws: and wss: of the same host), the QR code drawn
# inline as SVG by the API. No page may frame the consoles (a till in a frame could be
# clicked by someone else's page).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The shells hold no data (the scripts fetch it with the token); revalidated so that a new
    # release's scripts are picked up.
    "Cache-Control": "no-cache",
}

# What each console is called and which script runs it.
CONSOLES = {
    "shop": ("ROPOS Shop", "shop.js"),
    "reservation": ("Your reservation · ROPOS Shop", "reservation.js"),
    "pos": ("ROPOS Till", "pos.js"),
    "ops": ("ROPOS Operations", "ops.js"),
}


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["static"] = STATIC_URL
    return environment


def console_routes() -> list[BaseRoute]:
    """The consoles' pages and their static files, to mount in the gateway's app."""
    environment = _environment()

    def page(console: str, template: str, **context: str) -> Response:
        title, script = CONSOLES[console]
        body = environment.get_template(template).render(
            title=title, script=script, console=console, **context
        )
        return HTMLResponse(body, headers=PAGE_HEADERS)

    async def shop(request: Request) -> Response:
        return page("shop", "shop.html")

    async def reservation(request: Request) -> Response:
        # The id goes to the script as data (escaped); the API says whether it exists and
        # whether this shopper may see it.
        return page("reservation", "reservation.html", reservation_id=request.path_params["id"])

    async def pos(request: Request) -> Response:
        return page("pos", "pos.html")

    async def ops(request: Request) -> Response:
        return page("ops", "ops.html")

    return [
        Route("/shop", shop, methods=["GET"]),
        Route("/shop/reservations/{id}", reservation, methods=["GET"]),
        Route("/pos", pos, methods=["GET"]),
        Route("/ops", ops, methods=["GET"]),
        Mount(STATIC_URL, app=StaticFiles(directory=STATIC_DIR), name="consoles-static"),
    ]
