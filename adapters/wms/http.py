"""The WMS over HTTP with httpx: movements out (`POST /movements`), levels in (`GET /stock-levels`).
Every way the WMS can fail to answer in the protocol becomes `WmsUnavailable`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import httpx

from adapters.wms.protocol import movement_to_json
from domain.wms import MovementResult, Outcome, WmsLevel, WmsMovement, WmsUnavailable

_ERROR_MAX = 500  # a WMS's error text is kept, but not without limit


def idempotency_key(movements: Sequence[WmsMovement]) -> str:
    """The same batch always carries the same key, so a WMS that keys on it can drop a resend."""
    return hashlib.sha256("\n".join(m.id for m in movements).encode()).hexdigest()


class HttpWms:
    """`domain.wms.WmsPort` over HTTP: one client per process, short timeouts, no redirects.
    Messages of the errors it raises name the status or the kind of failure, never the token."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout_seconds: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        headers = {"User-Agent": "ropos-wms/1", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            headers=headers,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            transport=transport,
        )

    async def send(self, movements: Sequence[WmsMovement]) -> list[MovementResult]:
        if not movements:
            return []
        body = await self._call(
            "POST",
            "/movements",
            json={"movements": [movement_to_json(m) for m in movements]},
            headers={"Idempotency-Key": idempotency_key(movements)},
        )
        return _results(body, {m.id for m in movements})

    async def levels(self, store_id: str) -> list[WmsLevel]:
        body = await self._call("GET", "/stock-levels", params={"storeId": store_id})
        return _levels(body, store_id)

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Mapping[str, Any]:
        """The reply's JSON object when the WMS answered 200; WmsUnavailable otherwise."""
        try:
            response = await self._client.request(method, f"{self._base_url}{path}", **kwargs)
        except httpx.TimeoutException:
            raise WmsUnavailable(f"{method} {path}: the WMS did not answer in time.") from None
        except httpx.HTTPError as error:
            # The error's own text can carry the URL (and any credentials in it): name its kind.
            raise WmsUnavailable(
                f"{method} {path}: the WMS could not be reached ({type(error).__name__})."
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise WmsUnavailable(f"{method} {path}: the WMS answered {status}, try again later.")
        if status != 200:
            # A refusal (bad token, bad request) will not mend by itself: the caller counts the
            # attempts and gives up on the batch after its limit.
            raise WmsUnavailable(f"{method} {path}: the WMS refused the request with {status}.")
        try:
            body = response.json()
        except ValueError:
            raise WmsUnavailable(f"{method} {path}: the WMS's reply is not JSON.") from None
        if not isinstance(body, Mapping):
            raise WmsUnavailable(f"{method} {path}: the WMS's reply is not a JSON object.")
        return body


def _results(body: Mapping[str, Any], sent: set[str]) -> list[MovementResult]:
    raw = body.get("results")
    if not isinstance(raw, list):
        raise WmsUnavailable("POST /movements: the WMS's reply has no list of results.")
    results: list[MovementResult] = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise WmsUnavailable("POST /movements: a result in the WMS's reply has no id.")
        try:
            outcome = Outcome(str(item.get("outcome")))
        except ValueError:
            raise WmsUnavailable(
                "POST /movements: a result in the WMS's reply has an unknown outcome."
            ) from None
        error = item.get("error")
        if error is not None and not isinstance(error, str):
            raise WmsUnavailable(
                "POST /movements: a result's error in the WMS's reply is not text."
            )
        if item["id"] in sent:  # a result for a movement not sent is none of ours
            results.append(
                MovementResult(item["id"], outcome, None if error is None else error[:_ERROR_MAX])
            )
    missing = sent - {r.id for r in results}
    if missing:
        raise WmsUnavailable(
            f"POST /movements: the WMS's reply has no result for {len(missing)} of "
            f"{len(sent)} movements."
        )
    return results


def _levels(body: Mapping[str, Any], store_id: str) -> list[WmsLevel]:
    raw = body.get("levels")
    if not isinstance(raw, list):
        raise WmsUnavailable("GET /stock-levels: the WMS's reply has no list of levels.")
    levels: list[WmsLevel] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise WmsUnavailable("GET /stock-levels: a level in the WMS's reply is not an object.")
        sku, on_hand, reserved = item.get("sku"), item.get("onHand"), item.get("reserved")
        sequence = item.get("sequence")
        if (
            item.get("storeId") != store_id
            or not isinstance(sku, str)
            or not _is_int(on_hand)
            or not _is_int(reserved)
            or not (sequence is None or _is_int(sequence))
        ):
            raise WmsUnavailable(
                "GET /stock-levels: a level in the WMS's reply is not the protocol "
                "(storeId of the store asked for, sku, whole onHand, reserved and sequence)."
            )
        levels.append(WmsLevel(store_id, sku, on_hand, reserved, sequence))
    return levels


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
