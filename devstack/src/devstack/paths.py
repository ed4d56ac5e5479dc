"""Where the local stack keeps downloads (shared per user) and data (per checkout)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    """Downloads are shared by every checkout of the user (they are pinned and verified, so sharing is safe)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "thb-platform"
    path = Path(os.environ.get("THB_CACHE_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(name: str) -> Path:
    """Server data lives in the checkout's ignored .local folder, so two checkouts never share state."""
    path = Path(os.environ.get("THB_DATA_DIR", REPO_ROOT / ".local")) / name
    path.mkdir(parents=True, exist_ok=True)
    return path
