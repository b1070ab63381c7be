"""Drawing pickup QR codes (segno: a well-kept, dependency-free QR library)."""

from __future__ import annotations

import io

import segno


def qr_svg(payload: str) -> str:
    return segno.make(payload, error="m").svg_inline(scale=4, border=2)


def qr_png(payload: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()
