"""Key material: loading, local generation and rotation of the key file (format and procedures: docs/keys.md).

The key file holds named *rings*; each ring has one current key (used for new ciphertexts / index tokens) and
any number of older keys (still used to decrypt / look up). Which rings a country owns is configuration
(`countries.<CODE>.keys` in config/platform.yaml), so adding a partner country adds rings, not code.

Nothing here has a default key or secret. In local mode missing rings are generated into an ignored file with
0600 permissions; outside local mode a missing file or ring stops the process (`KeyConfigurationError`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from plumbing.errors import ConfigError, KeyConfigurationError

FORMAT = "thb-keys/1"
KEY_BYTES = 32  # AES-256 and HMAC-SHA256 both take 256-bit keys
_RING_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")
_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,60}$")


@dataclass(frozen=True)
class KeyRing:
    name: str
    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    def current_key(self) -> tuple[str, bytes]:
        return self.current, self.keys[self.current]

    def ids(self) -> list[str]:
        """Key ids, current first (the order lookups should try them)."""
        return [self.current, *sorted(k for k in self.keys if k != self.current)]


@dataclass(frozen=True)
class KeySet:
    rings: Mapping[str, KeyRing]
    source: Path | None = None

    def ring(self, name: str) -> KeyRing:
        try:
            return self.rings[name]
        except KeyError:
            raise KeyConfigurationError(f"key ring {name!r} is missing from the key file") from None

    def ring_of_key(self, key_id: str) -> KeyRing | None:
        for ring in self.rings.values():
            if key_id in ring.keys:
                return ring
        return None

    def require(self, ring_names: Iterable[str]) -> None:
        missing = sorted(set(ring_names) - set(self.rings))
        if missing:
            where = f" ({self.source})" if self.source else ""
            raise KeyConfigurationError(f"key file{where} lacks the key rings: {', '.join(missing)}")


# ------------------------------------------------------------------------------------------- file format


def parse_key_file(data: Any, source: Path | None = None) -> KeySet:
    where = str(source) if source else "key file"
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KeyConfigurationError(f"{where}: not a key file of format {FORMAT!r}")
    rings_raw = data.get("rings")
    if not isinstance(rings_raw, dict):
        raise KeyConfigurationError(f"{where}: /rings must be an object")
    rings: dict[str, KeyRing] = {}
    seen_ids: set[str] = set()
    for name, raw in rings_raw.items():
        pointer = f"{where}: /rings/{name}"
        if not _RING_NAME.match(name) or not isinstance(raw, dict):
            raise KeyConfigurationError(f"{pointer}: invalid ring")
        keys_raw, current = raw.get("keys"), raw.get("current")
        if not isinstance(keys_raw, dict) or not isinstance(current, str) or current not in keys_raw:
            raise KeyConfigurationError(f"{pointer}: `current` must name one of its `keys`")
        keys: dict[str, bytes] = {}
        for key_id, encoded in keys_raw.items():
            # A key id must identify one key across the whole file: a ciphertext names only its key id.
            if not _KEY_ID.match(key_id) or key_id in seen_ids:
                raise KeyConfigurationError(f"{pointer}/keys/{key_id}: invalid or duplicate key id")
            seen_ids.add(key_id)
            try:
                material = base64.b64decode(encoded, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise KeyConfigurationError(f"{pointer}/keys/{key_id}: not base64") from None
            if len(material) != KEY_BYTES:
                raise KeyConfigurationError(f"{pointer}/keys/{key_id}: must be {KEY_BYTES} bytes")
            keys[key_id] = material
        rings[name] = KeyRing(name=name, current=current, keys=MappingProxyType(keys))
    return KeySet(rings=MappingProxyType(rings), source=source)


def dump_key_file(keyset: KeySet) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "rings": {
            ring.name: {
                "current": ring.current,
                "keys": {kid: base64.b64encode(key).decode("ascii") for kid, key in ring.keys.items()},
            }
            for ring in keyset.rings.values()
        },
    }


def load_key_file(path: Path, *, strict_permissions: bool = True) -> KeySet:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyConfigurationError(f"key file {path} does not exist") from None
    # Group read is tolerated outside local mode (Kubernetes secret volumes with fsGroup); world access never.
    forbidden = 0o077 if strict_permissions else 0o007
    if stat.S_IMODE(info.st_mode) & forbidden:
        raise KeyConfigurationError(
            f"key file {path} is accessible to others (mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyConfigurationError(f"key file {path} cannot be read as JSON: {type(exc).__name__}") from None
    return parse_key_file(data, source=path)


def write_key_file(path: Path, keyset: KeySet) -> None:
    """Write atomically (temporary file + rename) and never with looser permissions than 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(dump_key_file(keyset), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


# ------------------------------------------------------------------------------- generation and rotation


def new_key_id(ring: str) -> str:
    # A random suffix rather than a counter: two environments never share an id for different keys, so a
    # ciphertext copied to the wrong environment fails as "unknown key id" instead of a confusing tag error.
    return f"{ring}-{secrets.token_hex(4)}"


def with_new_key(keyset: KeySet, ring_name: str) -> tuple[KeySet, str]:
    """Return a key set where `ring_name` has a fresh current key (created if the ring is new); older keys stay."""
    key_id = new_key_id(ring_name)
    existing = keyset.rings.get(ring_name)
    keys = dict(existing.keys) if existing else {}
    keys[key_id] = secrets.token_bytes(KEY_BYTES)
    rings = dict(keyset.rings)
    rings[ring_name] = KeyRing(name=ring_name, current=key_id, keys=MappingProxyType(keys))
    return KeySet(rings=MappingProxyType(rings), source=keyset.source), key_id


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # `make run` starts several processes at once; without a lock two of them could each generate a ring and
    # the last writer would discard keys the other had already used to encrypt.
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_local_keys(path: Path, ring_names: Iterable[str]) -> KeySet:
    """Local mode only: create the file and any missing rings; existing keys are never replaced."""
    with _locked(path):
        keyset = load_key_file(path) if path.exists() else KeySet(rings=MappingProxyType({}), source=path)
        missing = [name for name in ring_names if name not in keyset.rings]
        for name in missing:
            keyset, _ = with_new_key(keyset, name)
        if missing or not path.exists():
            write_key_file(path, keyset)
        return KeySet(rings=keyset.rings, source=path)


def rotate(path: Path, ring_name: str) -> str:
    """Add a new current key to an existing ring of the file at `path`; returns the new key id."""
    with _locked(path):
        keyset = load_key_file(path, strict_permissions=False)
        keyset.ring(ring_name)  # rotating a ring that does not exist is a typo, not a new ring
        keyset, key_id = with_new_key(keyset, ring_name)
        write_key_file(path, keyset)
        return key_id


def required_rings(countries: Iterable[Any]) -> list[str]:
    """Key rings to load: the Idempotency-Key store's rings and the rings the configured partner countries name."""
    # Platform-level rings: one seals stored responses (crypto.ResponseSealer), one keys request fingerprints
    # (crypto.RequestFingerprinter, narrowed to each service).
    names: list[str] = ["stored-responses", "request-fingerprints"]
    for country in countries:
        names += [country.data_key_ring, country.blind_index_key_ring]
    return names


def load_keys(settings: Any, config: Any) -> KeySet:
    """The start-up entry point: `settings` is a `plumbing.config.Settings`, `config` a `PlatformConfig`.

    Local mode generates what is missing into `settings.keys_file`; any other mode requires the file and every
    ring the configuration names, and raises `KeyConfigurationError` (refuse to start) otherwise.
    """
    rings = required_rings(config.countries.values())
    if settings.is_local:
        return ensure_local_keys(Path(settings.keys_file), rings)
    keyset = load_key_file(Path(settings.keys_file), strict_permissions=False)
    keyset.require(rings)
    return keyset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plumbing.keys", description="Manage the key file.")
    commands = parser.add_subparsers(dest="command", required=True)
    rotate_cmd = commands.add_parser("rotate", help="add a new current key to a ring (old keys stay)")
    rotate_cmd.add_argument("--file", type=Path, required=True)
    rotate_cmd.add_argument("--ring", required=True)
    init_cmd = commands.add_parser("init", help="create missing rings for the configured countries")
    init_cmd.add_argument("--file", type=Path, required=True)
    init_cmd.add_argument("--config", type=Path, default=Path("config/platform.yaml"))
    show_cmd = commands.add_parser("show", help="print ring names and key ids (never key material)")
    show_cmd.add_argument("--file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:  # a clear message, not a traceback, for an operator at a terminal
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "rotate":
        print(rotate(args.file, args.ring))
    elif args.command == "init":
        from plumbing.config import load_platform_config

        config = load_platform_config(args.config)
        ensure_local_keys(args.file, required_rings(config.countries.values()))
    else:
        keyset = load_key_file(args.file, strict_permissions=False)
        for ring in keyset.rings.values():
            print(ring.name, "current:", ring.current, "all:", " ".join(ring.ids()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
