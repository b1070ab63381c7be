"""The property tests' tier: a marker of their own (tests/conftest.py marks every test with its
folder's name, and markers are strict)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "property: state machines and properties drawn by Hypothesis, real services"
    )
