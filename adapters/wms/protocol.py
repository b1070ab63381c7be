"""The WMS protocol's JSON: a movement as `POST /movements` carries it, in both directions (the
HTTP client sends it, the emulator reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.wms import MovementKind, WmsMovement


def movement_to_json(m: WmsMovement) -> dict[str, Any]:
    return {
        "id": m.id,
        "storeId": m.store_id,
        "sku": m.sku,
        "sequence": m.sequence,
        "type": m.kind.value,
        "quantity": m.quantity,
        "reservationId": m.reservation_id,
        "occurredAt": m.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def movement_from_json(data: Mapping[str, Any]) -> WmsMovement:
    occurred = datetime.fromisoformat(str(data["occurredAt"]).replace("Z", "+00:00"))
    return WmsMovement(
        id=str(data["id"]),
        store_id=str(data["storeId"]),
        sku=str(data["sku"]),
        sequence=int(data["sequence"]),
        kind=MovementKind(data["type"]),
        quantity=int(data["quantity"]),
        reservation_id=data.get("reservationId"),
        occurred_at=occurred,
    )
