"""The fuzzing tier: a marker of its own (tests/conftest.py marks every test with its folder's
name, and markers are strict)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fuzz: generated GraphQL operations against a served gateway"
    )
