"""Repository-wide pytest set-up.

- Session fixtures for the real servers (kafka, mongo, keycloak) and the whole platform (`platform`) live in
  the local-stack package.
- Tests in an `integration` folder are marked `integration` (they need real servers); unit runs exclude them.
- Tests marked `disruptive` stop or cut off a real server: they run last, so the rest see a healthy stack.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["devstack.pytest_plugin", "devstack.pytest_platform"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
