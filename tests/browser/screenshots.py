"""Screenshots of each console in its main states, for people to look at (the README shows them):
a gateway on a throwaway SQLite file with the demo chain, driven in Debian's Chromium the way the
browser tests drive it, each state written as a PNG of a few dozen kB (256 colours).

    .venv/bin/python -m tests.browser.screenshots            # into docs/screenshots/
    .venv/bin/python -m tests.browser.screenshots --out DIR

Not a test: nothing here passes or fails on what the pages look like; rerun it after changing
a console and commit the pictures with the change."""

from __future__ import annotations

import argparse
import asyncio
import io
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright, expect

from adapters.db.engine import Database
from adapters.db.uow import SqlUnitOfWork
from gateway import migrate
from gateway.seed import demo_skus, demo_stock, demo_stores, load_demo
from tests.api.conftest import running_gateway
from tests.browser.conftest import CHROMIUM
from tests.browser.consoles import PHONE, Consoles, Socket
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
HERE = {"latitude": 51.5152, "longitude": -0.1419}  # Oxford Circus

RESERVE = """
mutation($input: ReserveInput!) { reserve(input: $input) { reservations { id code } } }
"""
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { status } }"
CHECK_IN = "mutation($id: ID!, $note: String) { checkIn(id: $id, note: $note) { arrivedAt } }"
COMPLETE = """
mutation($id: ID!, $payment: PaymentInput!) { completePickup(id: $id, payment: $payment) { status } }
"""
CANCEL = 'mutation($id: ID!) { cancelReservation(id: $id, reason: "changed my mind") { status } }'
SET_WEBHOOK = """
mutation($url: String) { setStoreWebhook(storeId: "S001", url: $url, secret: "s001-pos-webhook-secret") { url } }
"""
DEAD = "query { webhookDeliveries(status: DEAD) { id } }"


class Shots:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[tuple[str, int]] = []

    async def take(self, page: Page, name: str, *, full_page: bool = False) -> None:
        """The page as it stands, without the blinking caret, in 256 colours."""
        from PIL import Image  # the dev extras have Pillow (matplotlib's); serving does not

        await page.evaluate("() => document.activeElement && document.activeElement.blur()")
        png = await page.screenshot(full_page=full_page, caret="hide", animations="disabled")
        image = Image.open(io.BytesIO(png)).convert("RGB")
        small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        path = self.out / f"{name}.png"
        small.save(path, optimize=True)
        self.written.append((path.name, path.stat().st_size))


def skus_at(store: str, count: int) -> list[str]:
    """SKUs the demo chain has at least 3 of at `store` (its counts are seeded, not random)."""
    levels = demo_stock(demo_stores(), demo_skus())
    return [
        c.sku for c in levels if c.store_id == store and c.on_hand - (c.safety_stock or 0) >= 3
    ][:count]


async def reserve(consoles: Consoles, who: str, store: str, lines: dict[str, int]) -> Any:
    variables = {
        "input": {"storeId": store, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}
    }
    token = consoles.token("customer", sub=who)
    (made,) = (await consoles.ok(RESERVE, variables, token))["reserve"]["reservations"]
    return made


async def shopper_and_till(consoles: Consoles, shots: Shots) -> None:
    gateway = consoles.gateway
    pos = consoles.token("pos", sub="till-1", store="S001")
    # A morning at Oxford Circus: two reservations waiting, one made ready and collected.
    sku = skus_at("S001", 6)
    await reserve(consoles, "bob", "S001", {sku[1]: 1})
    await reserve(consoles, "chloe", "S001", {sku[2]: 1, sku[3]: 2})
    gateway.clock.advance(600)
    done = await reserve(consoles, "dev", "S001", {sku[4]: 1})
    gateway.clock.advance(1500)
    await consoles.ok(MARK_READY, {"id": done["id"]}, pos)
    await consoles.ok(
        CHECK_IN, {"id": done["id"], "note": None}, consoles.token("customer", sub="dev")
    )
    gateway.clock.advance(420)
    payment = {"amount": "15.00", "currency": "GBP", "method": "card", "reference": "till-1/1"}
    await consoles.ok(COMPLETE, {"id": done["id"], "payment": payment}, pos)
    cancelled = await reserve(consoles, "erin", "S001", {sku[5]: 1})
    await consoles.ok(CANCEL, {"id": cancelled["id"]}, consoles.token("customer", sub="erin"))
    gateway.clock.advance(300)

    socket = Socket()
    till = await consoles.open("/pos", socket=socket)
    await expect(till.get_by_label("Token")).to_be_visible()
    await shots.take(till, "pos-sign-in")
    await consoles.sign_in(till, pos)
    await expect(till.get_by_test_id("connection")).to_have_text("Live")

    shop = await consoles.open(
        "/shop", viewport=PHONE, geolocation=HERE, permissions=["geolocation"]
    )
    await consoles.sign_in(shop, consoles.token("customer", sub="alice"))
    await shop.get_by_role("button", name="Use my location").click()
    await shop.locator("#sku-0").fill(sku[0])
    await shop.locator("#qty-0").fill("2")
    await shots.take(shop, "shop-find")
    await shop.get_by_role("button", name="Find stores").click()
    await expect(shop.get_by_role("button", name="Reserve at ROPOS Oxford Circus")).to_be_visible()
    await shots.take(shop, "shop-stores-near-me")  # scrolled to the results, as a phone shows them

    await shop.get_by_role("button", name="Reserve at ROPOS Oxford Circus").click()
    await shop.wait_for_url("**/shop/reservations/*")
    await expect(shop.get_by_role("timer")).to_be_visible()
    await shots.take(shop, "shop-reservation-held", full_page=True)

    await expect(till.locator(".queue-item.fresh")).to_have_count(1)
    await shots.take(till, "pos-queue")

    await till.locator(".queue-item.fresh").get_by_role("button", name="Open").click()
    await till.get_by_test_id("panel").get_by_role("button", name="Mark ready").click()
    await expect(shop.locator(".big-status")).to_have_attribute("data-status", "READY_FOR_PICKUP")
    await shop.get_by_label("Note for the staff").fill("blue coat, by the door")
    await shop.get_by_role("button", name="I'm here").click()
    await expect(shop.get_by_test_id("checked-in")).to_be_visible()
    await shots.take(shop, "shop-reservation-ready-checked-in", full_page=True)
    await expect(till.get_by_test_id("arrived").locator(".queue-item")).to_have_count(1)
    await till.get_by_test_id("panel").get_by_label("Amount").fill("178.00")
    await shots.take(till, "pos-arrival-and-payment")

    await till.get_by_label("Scan or type the pickup code").fill("ROPOS1.forged.ABC234.xxxxxxxx")
    await till.get_by_role("button", name="Find").click()
    await expect(till.get_by_test_id("message")).to_have_attribute("role", "alert")
    await shots.take(till, "pos-forged-code-refused")

    await socket.drop()
    await expect(till.get_by_test_id("connection")).to_have_text("Reconnecting…")
    await shots.take(till, "pos-reconnecting")
    socket.restore()
    await expect(till.get_by_test_id("connection")).to_have_text("Live", timeout=15_000)

    await till.get_by_test_id("panel").get_by_role("button", name="Complete pickup").click()
    await expect(shop.locator(".big-status")).to_have_attribute("data-status", "COLLECTED")
    await shots.take(shop, "shop-reservation-collected", full_page=True)


async def operations(consoles: Consoles, shots: Shots, hook_url: str) -> None:
    ops = consoles.token("ops", sub="ops-anna")
    await consoles.ok(SET_WEBHOOK, {"url": hook_url}, ops)
    held = await reserve(consoles, "frank", "S001", {skus_at("S001", 7)[6]: 1})
    await consoles.ok(MARK_READY, {"id": held["id"]}, consoles.token("pos", store="S001"))
    async with asyncio.timeout(10):
        while not (await consoles.ok(DEAD, token=ops))["webhookDeliveries"]:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    page = await consoles.open("/ops", ops)
    await expect(page.get_by_test_id("kpis")).to_be_visible()
    await expect(page.get_by_test_id("dead-webhooks").locator(".queue-item")).to_have_count(1)
    await shots.take(page, "ops-figures")
    await page.locator("#dead-letters").scroll_into_view_if_needed()
    await shots.take(page, "ops-dead-letters")


async def run(out: Path) -> list[tuple[str, int]]:
    shots = Shots(out)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/ropos.db"
        db = Database(url)
        await migrate.upgrade(db)
        try:
            async with (
                running_gateway(url, db, broker_url="memory://", webhook_max_attempts=1) as gw,
                async_playwright() as playwright,
                httpx.AsyncClient(timeout=30) as http,
            ):
                await load_demo(uow=lambda: SqlUnitOfWork(db), clock=gw.clock)
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
                consoles = Consoles(gw, browser, http)
                try:
                    await shopper_and_till(consoles, shots)
                    # A POS webhook nobody answers: the dead letter /ops shows.
                    await operations(consoles, shots, f"http://127.0.0.1:{free_port()}/hooks")
                finally:
                    await consoles.close()
                    await browser.close()
                assert not consoles.script_errors, consoles.script_errors
        finally:
            await db.dispose()
    return shots.written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, size in asyncio.run(run(args.out)):
        print(f"{args.out / name}  {size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
