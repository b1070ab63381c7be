"""The invariants of the stock and reservations (ARCHITECTURE.md), checked against the data: what must hold after any sequence of
reserves, cancels, expiries and syncs. Used by the tests after every concurrent scenario and by
`ropos check` in operation."""

from __future__ import annotations

from sqlalchemy import text

from adapters.db.engine import Database

_CHECKS = {
    "reserved equals the units of active reservation lines": """
        SELECT s.store_id, s.sku, s.reserved, COALESCE(a.units, 0) AS active_units
        FROM stock_levels s
        LEFT JOIN (
            SELECT r.store_id, l.sku, SUM(l.quantity) AS units
            FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id
            WHERE r.status IN ('HELD', 'READY_FOR_PICKUP')
            GROUP BY r.store_id, l.sku
        ) a ON a.store_id = s.store_id AND a.sku = s.sku
        WHERE s.reserved <> COALESCE(a.units, 0)
    """,
    "active lines without a stock row": """
        SELECT r.store_id, l.sku FROM reservations r
        JOIN reservation_lines l ON l.reservation_id = r.id
        LEFT JOIN stock_levels s ON s.store_id = r.store_id AND s.sku = l.sku
        WHERE r.status IN ('HELD', 'READY_FOR_PICKUP') AND s.sku IS NULL
    """,
    "nothing negative": """
        SELECT store_id, sku, on_hand, reserved, safety_stock FROM stock_levels
        WHERE on_hand < 0 OR reserved < 0 OR safety_stock < 0
    """,
    "no oversell (reserved within on hand less safety stock)": """
        SELECT store_id, sku, on_hand, reserved, safety_stock FROM stock_levels
        WHERE reserved > 0 AND reserved > on_hand - safety_stock
    """,
    "the ledger adds up to on hand and reserved": """
        SELECT s.store_id, s.sku, s.on_hand, s.reserved, m.on_hand_sum, m.reserved_sum
        FROM stock_levels s
        LEFT JOIN (
            SELECT store_id, sku, SUM(on_hand_delta) AS on_hand_sum,
                   SUM(reserved_delta) AS reserved_sum
            FROM stock_movements GROUP BY store_id, sku
        ) m ON m.store_id = s.store_id AND m.sku = s.sku
        WHERE s.on_hand <> COALESCE(m.on_hand_sum, 0) OR s.reserved <> COALESCE(m.reserved_sum, 0)
    """,
    "customer reservation counters match": """
        SELECT customer_id, SUM(counted) AS counted, SUM(active) AS active FROM (
            SELECT customer_id, active_reservations AS counted, 0 AS active FROM customer_holds
            UNION ALL
            SELECT customer_id, 0, COUNT(*) FROM reservations
            WHERE status IN ('HELD', 'READY_FOR_PICKUP') GROUP BY customer_id
        ) x GROUP BY customer_id HAVING SUM(counted) <> SUM(active)
    """,
    "customer unit counters match": """
        SELECT customer_id, sku, SUM(counted) AS counted, SUM(active) AS active FROM (
            SELECT customer_id, sku, units AS counted, 0 AS active FROM customer_sku_holds
            UNION ALL
            SELECT r.customer_id, l.sku, 0, SUM(l.quantity)
            FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id
            WHERE r.status IN ('HELD', 'READY_FOR_PICKUP') GROUP BY r.customer_id, l.sku
        ) x GROUP BY customer_id, sku HAVING SUM(counted) <> SUM(active)
    """,
}


async def violations(
    db: Database, *, allow_shortage: bool = False
) -> dict[str, list[tuple[object, ...]]]:
    """Each broken invariant with (up to 20 of) the rows that break it; empty when all hold.

    With allow_shortage, on hand below reserved is not reported: the WMS may count less than is
    reserved (shrink, damage), which the stock-shortage handling resolves.
    """
    found: dict[str, list[tuple[object, ...]]] = {}
    async with db.read() as conn:
        for name, sql in _CHECKS.items():
            if allow_shortage and name.startswith("no oversell"):
                continue
            rows = (await conn.execute(text(sql + " LIMIT 20"))).all()
            if rows:
                found[name] = [tuple(row) for row in rows]
    return found
