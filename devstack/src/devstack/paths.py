"""Where the local stack keeps downloads (shared per user) and data (per checkout)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    """Downloads are cached per checkout unless THB_CACHE_DIR points elsewhere (CI may share one)."""
    path = Path(os.environ.get("THB_CACHE_DIR", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(name: str) -> Path:
    """Server data lives in the checkout's ignored .local folder, so two checkouts never share state."""
    path = Path(os.environ.get("THB_DATA_DIR", REPO_ROOT / ".local")) / name
    path.mkdir(parents=True, exist_ok=True)
    return path
