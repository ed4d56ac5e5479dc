"""Pinned, checksum-verified downloads into the cache, with progress and a clear error on failure."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

from devstack.paths import cache_dir
from devstack.process import StackError, progress

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, name: str, sha256: str) -> Path:
    """Return the cached file, downloading it first; a checksum mismatch deletes the file and fails."""
    target = cache_dir() / "downloads" / name
    if target.exists() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    progress(f"downloading {name} from {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            next_report = 0.0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if total > (4 << 20) and done / total >= next_report:
                    progress(f"  {name}: {done * 100 // total}% of {total // (1 << 20)} MiB")
                    next_report += 0.25
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StackError(
            f"download of {name} failed ({exc}); check the network and run the command again"
        ) from exc
    actual = sha256_of(partial)
    if actual != sha256:
        partial.unlink(missing_ok=True)
        raise StackError(
            f"checksum mismatch for {name}: expected {sha256}, got {actual}; the file was removed, run again"
        )
    shutil.move(partial, target)
    return target
