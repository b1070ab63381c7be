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
    ("S001", "Oxford Circus", 51.5152, -0.1419, "240 Oxford Street, London W1C 1DE"),
    ("S002", "Covent Garden", 51.5117, -0.1240, "14 Long Acre, London WC2E 9LH"),
    ("S003", "Camden Town", 51.5390, -0.1426, "205 Camden High Street, London NW1 7BU"),
    ("S004", "Angel Islington", 51.5322, -0.1058, "21 Upper Street, London N1 0PQ"),
    ("S005", "Shoreditch", 51.5265, -0.0787, "112 Shoreditch High Street, London E1 6JN"),
    ("S006", "Canary Wharf", 51.5054, -0.0235, "Cabot Place, Canary Wharf, London E14 4QT"),
    (
        "S007",
        "Stratford",
        51.5416,
        -0.0033,
        "Westfield Stratford City, Montfichet Road, London E20 1EJ",
    ),
    ("S008", "Greenwich", 51.4826, -0.0077, "12 Nelson Road, London SE10 9JB"),
    ("S009", "Brixton", 51.4613, -0.1156, "440 Brixton Road, London SW9 8EJ"),
    ("S010", "Clapham Junction", 51.4642, -0.1703, "32 St John's Road, London SW11 1PW"),
    ("S011", "Wimbledon", 51.4214, -0.2064, "16 The Broadway, London SW19 1RF"),
    ("S012", "Richmond", 51.4613, -0.3037, "45 George Street, Richmond TW9 1HJ"),
    ("S013", "Hammersmith", 51.4927, -0.2236, "51 King Street, London W6 9HW"),
    ("S014", "White City", 51.5072, -0.2215, "Westfield London, Ariel Way, London W12 7GF"),
    (
        "S015",
        "Kensington High Street",
        51.5010,
        -0.1925,
        "104 Kensington High Street, London W8 4SG",
    ),
    ("S016", "King's Road Chelsea", 51.4875, -0.1687, "125 King's Road, London SW3 4PW"),
    ("S017", "Victoria", 51.4965, -0.1447, "38 Victoria Street, London SW1H 0NW"),
    ("S018", "London Bridge", 51.5045, -0.0865, "18 Borough High Street, London SE1 9QG"),
    ("S019", "Bank", 51.5133, -0.0890, "10 Cheapside, London EC2V 6AN"),
    ("S020", "Croydon", 51.3762, -0.0982, "45 North End, Croydon CR0 1TY"),
    ("S021", "Ealing Broadway", 51.5149, -0.3017, "60 The Broadway, London W5 5JN"),
    ("S022", "Wembley", 51.5560, -0.2796, "Wembley Park Boulevard, Wembley HA9 0QL"),
    ("S023", "Finchley Road", 51.5472, -0.1804, "O2 Centre, 255 Finchley Road, London NW3 6LU"),
    ("S024", "Walthamstow", 51.5830, -0.0197, "230 High Street, London E17 7JH"),
    (
        "S025",
        "Kingston upon Thames",
        51.4123,
        -0.3007,
        "8 Clarence Street, Kingston upon Thames KT1 1NY",
    ),
    ("S026", "Bromley", 51.4039, 0.0198, "95 High Street, Bromley BR1 1JX"),
    ("S027", "Ilford", 51.5590, 0.0741, "148 High Road, Ilford IG1 1LR"),
    ("S028", "Harrow", 51.5806, -0.3420, "310 Station Road, Harrow HA1 2DX"),
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
        Store.build(
            id=i,
            name=f"ROPOS {name}",
            lat=lat,
            lon=lon,
            timezone="Europe/London",
            address=address,
        )
        for i, name, lat, lon, address in LONDON_STORES
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
