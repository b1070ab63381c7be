"""The consoles' third-party files: each one listed in vendor/MANIFEST.json with its package,
version, licence and sha256, each package's licence text beside it; and no page loads anything
from another origin (they work on a machine with no internet)."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from gateway.consoles import CONTENT_SECURITY_POLICY, STATIC_DIR, STATIC_URL, console_routes

ROOT = Path(__file__).resolve().parents[2]
VENDOR = STATIC_DIR / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"
PAGES = ["/shop", "/shop/reservations/R-1", "/pos", "/ops"]
# What a licence's text says first, by SPDX id.
LICENCE_WORDS = {
    "MIT": "MIT License",
    "Apache-2.0": "Apache License",
    "MPL-2.0": "Mozilla Public License",
}
# URLs in vendored code that name something and load nothing: the SVG namespace Preact creates
# elements in.
NAMES_NOT_LOADS = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)]*""", re.IGNORECASE)
IMPORT = re.compile(r"""(?:^|[\s;}])(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']""")


def manifest() -> list[dict[str, Any]]:
    return list(json.loads(MANIFEST.read_text())["files"])


def test_every_vendored_file_is_listed_with_its_sha256() -> None:
    on_disk = {
        str(path.relative_to(VENDOR))
        for path in VENDOR.rglob("*")
        if path.is_file() and path != MANIFEST
    }
    listed = [entry["path"] for entry in manifest()]

    assert sorted(listed) == sorted(on_disk)
    assert len(listed) == len(set(listed))
    for entry in manifest():
        digest = hashlib.sha256((VENDOR / entry["path"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], entry["path"]


@pytest.mark.parametrize("entry", manifest(), ids=lambda e: e["path"])
def test_every_entry_says_where_it_came_from(entry: dict[str, Any]) -> None:
    assert all(entry[key] for key in ("package", "purpose", "from")), entry
    assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"])
    package, version = entry["package"], entry["version"]
    assert entry["source"] == f"https://registry.npmjs.org/{package}/-/{package}-{version}.tgz"
    assert entry["integrity"].startswith("sha512-")
    licences = set(entry["licence"].split(" AND "))
    assert licences <= set(LICENCE_WORDS), entry["licence"]


def test_every_package_has_its_licence_text_beside_it() -> None:
    entries = manifest()
    texts = {e["package"]: e for e in entries if e["path"].startswith("licenses/")}
    bundled = {e["package"] for e in entries} | {"preact"}  # htm's standalone build has Preact
    assert set(texts) == bundled
    for package, entry in texts.items():
        text = (VENDOR / entry["path"]).read_text()
        assert LICENCE_WORDS[entry["licence"]] in text, package


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "srcset") and v]
        self._in_script = tag == "script" and "src" not in values
        if tag == "style" or "style" in values:
            self.inline.append(f"style on <{tag}>")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"inline script: {data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The consoles' routes alone, in process: no network, no database."""
    transport = httpx.ASGITransport(app=Starlette(routes=console_routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def test_no_page_loads_anything_from_another_origin(client: httpx.AsyncClient) -> None:
    assert "http" not in CONTENT_SECURITY_POLICY
    loaded: set[str] = set()
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        references = _References()
        references.feed(response.text)
        assert references.inline == [], path
        for url in references.urls:
            if url.startswith("#"):
                continue  # a place in the page itself
            assert re.match(r"/[^/]", url), (path, url)
            if url.startswith(STATIC_URL):
                loaded.add(url)
    # What the pages load, and what those scripts import in turn: all of it from here.
    seen: set[str] = set()
    while loaded - seen:
        url = min(loaded - seen)
        seen.add(url)
        response = await client.get(url)
        assert response.status_code == 200, url
        for specifier in IMPORT.findall(response.text):
            assert specifier.startswith("./"), (url, specifier)
            loaded.add(f"{url.rsplit('/', 1)[0]}/{specifier[2:]}")
        far = set(URL.findall(response.text)) - NAMES_NOT_LOADS
        assert far == set(), url
    assert f"{STATIC_URL}/vendor/htm-preact-standalone.module.js" in seen
    assert f"{STATIC_URL}/vendor/graphql-ws.min.js" in seen
    # axe-core is for the browser tests only: no page loads it.
    assert not any("axe" in url for url in seen)


async def test_no_console_script_or_style_names_another_origin(
    client: httpx.AsyncClient,
) -> None:
    """Every file of the consoles' own, loaded by a page or not, and none evaluates text."""
    own = {
        f"{STATIC_URL}/{path.relative_to(STATIC_DIR)}"
        for path in STATIC_DIR.iterdir()
        if path.suffix in (".js", ".css")
    }
    for url in own:
        text = (await client.get(url)).text
        assert set(URL.findall(text)) == set(), url
        assert not re.search(r"\beval\(|new Function\b", text), url
    assert {Path(u).name for u in own} >= {"common.js", "shop.js", "pos.js", "ops.js"}


def test_every_console_file_is_shipped_in_the_package() -> None:
    """The image installs ROPOS as a wheel (not from the source tree): every template, script,
    style and vendored file must be package data, or the gateway there cannot serve them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"].get("gateway.consoles", [])
    here = STATIC_DIR.parent
    files = [p.relative_to(here) for p in here.rglob("*") if p.is_file()]
    data = [p for p in files if p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    unshipped = [str(p) for p in data if not any(p.match(pattern) for pattern in patterns)]
    assert data
    assert unshipped == []
