"""Every demo store has a postal address of its own, on one line, ending in its postcode."""

from __future__ import annotations

import re

from domain.catalog import MAX_ADDRESS_LENGTH
from gateway.seed import demo_stores

POSTCODE = re.compile(r" [A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}$")


def test_every_demo_store_has_an_address_of_its_own_with_a_postcode() -> None:
    stores = demo_stores()

    found = {s.id: s.address for s in stores}

    bad = {
        i: a
        for i, a in found.items()
        if not a or not POSTCODE.search(a) or len(a) > MAX_ADDRESS_LENGTH or not a.isprintable()
    }
    assert bad == {}
    assert len(set(found.values())) == len(stores)
