"""The demo chain: 28 stores across London, 240 SKUs and their stock, loaded through the same use
cases the API calls (so the ledger and the outbox see it too)."""

from __future__ import annotations

import random
from decimal import Decimal

from domain.catalog import Sku, StockCount, Store
from domain.clock import Clock
from services import stock
from services.unit_of_work import UnitOfWorkFactory

LONDON_STORES = [
    ("S001", "Oxford Circus", 51.5152, -0.1419),
    ("S002", "Covent Garden", 51.5117, -0.1240),
    ("S003", "Camden Town", 51.5390, -0.1426),
    ("S004", "Angel Islington", 51.5322, -0.1058),
    ("S005", "Shoreditch", 51.5265, -0.0787),
    ("S006", "Canary Wharf", 51.5054, -0.0235),
    ("S007", "Stratford", 51.5416, -0.0033),
    ("S008", "Greenwich", 51.4826, -0.0077),
    ("S009", "Brixton", 51.4613, -0.1156),
    ("S010", "Clapham Junction", 51.4642, -0.1703),
    ("S011", "Wimbledon", 51.4214, -0.2064),
    ("S012", "Richmond", 51.4613, -0.3037),
    ("S013", "Hammersmith", 51.4927, -0.2236),
    ("S014", "White City", 51.5072, -0.2215),
    ("S015", "Kensington High Street", 51.5010, -0.1925),
    ("S016", "King's Road Chelsea", 51.4875, -0.1687),
    ("S017", "Victoria", 51.4965, -0.1447),
    ("S018", "London Bridge", 51.5045, -0.0865),
    ("S019", "Bank", 51.5133, -0.0890),
    ("S020", "Croydon", 51.3762, -0.0982),
    ("S021", "Ealing Broadway", 51.5149, -0.3017),
    ("S022", "Wembley", 51.5560, -0.2796),
    ("S023", "Finchley Road", 51.5472, -0.1804),
    ("S024", "Walthamstow", 51.5830, -0.0197),
    ("S025", "Kingston upon Thames", 51.4123, -0.3007),
    ("S026", "Bromley", 51.4039, 0.0198),
    ("S027", "Ilford", 51.5590, 0.0741),
    ("S028", "Harrow", 51.5806, -0.3420),
]

PRODUCTS = [
    ("Trail running shoe", Decimal("89.00")),
    ("Road running shoe", Decimal("79.00")),
    ("Waterproof jacket", Decimal("120.00")),
    ("Fleece mid-layer", Decimal("45.00")),
    ("Merino T-shirt", Decimal("39.00")),
    ("Hiking trousers", Decimal("55.00")),
    ("Daypack 20 L", Decimal("49.00")),
    ("Insulated bottle 750 ml", Decimal("24.00")),
    ("Headlamp 400 lm", Decimal("35.00")),
    ("Cycling helmet", Decimal("65.00")),
    ("Yoga mat", Decimal("29.00")),
    ("Running socks 3-pack", Decimal("15.00")),
]
VARIANTS = [
    "XS",
    "S",
    "M",
    "L",
    "XL",
    "XXL",
    "Black",
    "Navy",
    "Red",
    "Green",
    "Grey",
    "Blue",
    "Sand",
    "Olive",
    "White",
    "Orange",
    "Teal",
    "Purple",
    "Yellow",
    "Pink",
]


def demo_stores() -> list[Store]:
    return [
        Store.build(id=i, name=f"ROPOS {name}", lat=lat, lon=lon, timezone="Europe/London")
        for i, name, lat, lon in LONDON_STORES
    ]


def demo_skus() -> list[Sku]:
    return [
        Sku.build(code=f"SKU-{100 * (p + 1) + v:05d}", name=f"{name} {variant}", unit_price=price)
        for p, (name, price) in enumerate(PRODUCTS)
        for v, variant in enumerate(VARIANTS)
    ]


def demo_stock(stores: list[Store], skus: list[Sku], seed: int = 42) -> list[StockCount]:
    rng = random.Random(seed)
    return [
        StockCount.build(
            store_id=store.id,
            sku=sku.code,
            on_hand=rng.randint(1, 30),
            safety_stock=rng.choice((0, 0, 1, 2)),
        )
        for store in stores
        for sku in skus
        if rng.random() < 0.75
    ]


async def load_demo(*, uow: UnitOfWorkFactory, clock: Clock) -> dict[str, int]:
    stores, skus = demo_stores(), demo_skus()
    levels = demo_stock(stores, skus)
    await stock.upsert_stores(stores, uow=uow, clock=clock)
    await stock.upsert_skus(skus, uow=uow, clock=clock)
    applied = await stock.sync_stock(levels, uow=uow, clock=clock)
    return {"stores": len(stores), "skus": len(skus), "stock_levels": applied}
