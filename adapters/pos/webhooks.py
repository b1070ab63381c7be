"""Sending POS webhooks over HTTP with httpx: one client per process, short timeouts."""

from __future__ import annotations

import httpx


class HttpWebhookSender:
    def __init__(self, timeout_seconds: float = 5.0) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": "ropos-webhooks/1"},
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        response = await self._client.post(url, content=body, headers=headers)
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()
