"""The pickup handoff's own rules: the signed QR payload a shopper shows at the till, and the
payment the POS records when the goods are handed over."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from domain.codes import normalize_pickup_code
from domain.errors import BadInput

QR_PREFIX = "ROPOS1"
_SIGNATURE_LENGTH = 27  # base64url characters: 160 bits of the HMAC-SHA256


def _signature(reservation_id: str, code: str, key: bytes) -> str:
    mac = hmac.new(key, f"{QR_PREFIX}|{reservation_id}|{code}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")[:_SIGNATURE_LENGTH]


def qr_payload(reservation_id: str, code: str, key: bytes) -> str:
    """The text a pickup QR code carries: it names the reservation and is signed, so a code made
    up or altered at home does not scan."""
    return f"{QR_PREFIX}.{reservation_id}.{code}.{_signature(reservation_id, code, key)}"


@dataclass(frozen=True, slots=True)
class ScannedCode:
    """What a till scanned or typed: a verified QR payload (naming the reservation) or a receipt
    code (to look up among the store's reservations)."""

    reservation_id: str | None
    code: str


def read_scanned(text: str, key: bytes) -> ScannedCode:
    cleaned = text.strip()
    if cleaned.upper().startswith(QR_PREFIX + "."):
        parts = cleaned.split(".")
        if len(parts) != 4:
            raise BadInput("This QR code is not a ROPOS pickup code.", field="code")
        _, reservation_id, code, signature = parts
        expected = _signature(reservation_id, code, key)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise BadInput(
                "This QR code is not valid: it was not issued by ROPOS or has been altered.",
                field="code",
            )
        return ScannedCode(reservation_id, code)
    code = normalize_pickup_code(cleaned)
    if not code or len(code) > 16 or not code.isalnum():
        raise BadInput("Scan the QR code or type the receipt's pickup code.", field="code")
    return ScannedCode(None, code)


_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal("1000000000")


@dataclass(frozen=True, slots=True)
class Payment:
    """Money taken at the till for a collected reservation. The reference is the POS's own id of
    the payment: the same reference again is the same payment (a retried request)."""

    amount: Decimal
    currency: str
    method: str
    reference: str

    @classmethod
    def build(
        cls, *, amount: Decimal | str | float, currency: str, method: str, reference: str
    ) -> Payment:
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise BadInput(f"amount must be a number, got {amount!r}.", field="amount") from None
        if not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
            raise BadInput("amount must be 0 or more.", field="amount")
        if value != value.quantize(Decimal("0.01")):
            raise BadInput("amount takes at most two decimals.", field="amount")
        currency = currency.strip().upper()
        if not _CURRENCY.match(currency):
            raise BadInput(
                f"currency must be an ISO 4217 code like EUR, got {currency!r}.", field="currency"
            )
        method = method.strip().lower()
        if not method or len(method) > 32 or not method.replace("_", "").isalnum():
            raise BadInput(
                "method must be a short word such as card, cash or voucher.", field="method"
            )
        reference = reference.strip()
        if not reference or len(reference) > 128 or not reference.isprintable():
            raise BadInput("reference must be 1 to 128 printable characters.", field="reference")
        return cls(value.quantize(Decimal("0.01")), currency, method, reference)
