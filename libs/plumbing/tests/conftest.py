"""Shared pytest hooks for the plumbing tests."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Tests marked disruptive stop or cut off a real (session-wide) server: run them after everything else so
    # a slow restart or a failed one cannot take other tests down with it. The sort is stable: the order among
    # the other tests is unchanged.
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
