"""Pickup codes: short, read aloud or typed at a till without confusing 0/O or 1/I/L."""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6


def new_pickup_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_pickup_code(text: str) -> str:
    """What a person typed or a scanner read, in the form codes are stored: no spaces or dashes,
    upper case."""
    return "".join(ch for ch in text.upper() if ch not in " -\t\r\n")
