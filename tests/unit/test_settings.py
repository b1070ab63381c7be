"""Settings that come from the environment: an empty WMS variable means not set, and the WMS's
signing secret must be long enough."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import Settings


def test_empty_wms_variables_mean_not_set() -> None:
    # docker compose passes `${ROPOS_WMS_URL:-}` as an empty string
    settings = Settings(wms_url="", wms_token=" ", wms_inbound_secret="")
    assert (settings.wms_url, settings.wms_token, settings.wms_inbound_secret) == (None, None, None)


def test_a_short_inbound_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(wms_inbound_secret="short")
    assert Settings(wms_inbound_secret="x" * 16).wms_inbound_secret is not None
