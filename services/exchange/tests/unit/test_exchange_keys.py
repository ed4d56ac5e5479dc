"""Country keys in the key file (plumbing/country_keys.py): generated in local mode beside the other rings,
required everywhere else, and usable as signing and encryption keys."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from plumbing.country_keys import CountryKeys, country_key_rings, load_keys_with_country_keys
from plumbing.errors import KeyConfigurationError
from plumbing.fake_store import checkout_config as repo_config
from plumbing.keys import load_key_file, rotate


def settings(path: Path, *, local: bool) -> SimpleNamespace:
    return SimpleNamespace(keys_file=path, is_local=local)


def test_local_mode_adds_the_country_rings_to_the_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = load_keys_with_country_keys(settings(path, local=True), repo_config())
    assert set(country_key_rings(["AL", "XK", "ME"])) <= set(keys.rings)
    assert {"al-data", "xk-index", "stored-responses"} <= set(keys.rings)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    again = load_keys_with_country_keys(settings(path, local=True), repo_config())
    assert again.ring("xk-exchange-signing").keys == keys.ring("xk-exchange-signing").keys  # never replaced


def test_outside_local_mode_a_missing_country_ring_stops_the_process(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    load_keys_with_country_keys(settings(path, local=True), repo_config())
    data = json.loads(path.read_text())
    del data["rings"]["me-exchange-encryption"]
    path.write_text(json.dumps(data))
    with pytest.raises(KeyConfigurationError) as error:
        load_keys_with_country_keys(settings(path, local=False), repo_config())
    assert "me-exchange-encryption" in str(error.value)


def test_rotation_keeps_older_country_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    load_keys_with_country_keys(settings(path, local=True), repo_config())
    first = CountryKeys.from_keyset(load_key_file(path), ["AL", "XK", "ME"])
    old_kid, _ = first.signing_key("XK")
    new_kid = rotate(path, "xk-exchange-signing")
    rotated = CountryKeys.from_keyset(load_key_file(path), ["AL", "XK", "ME"])
    assert rotated.signing_key("XK")[0] == new_kid
    assert set(rotated.verification_keys("XK")) == {old_kid, new_kid}
    assert not set(rotated.verification_keys("XK")) & set(rotated.verification_keys("AL"))
    with pytest.raises(KeyConfigurationError):
        rotated.signing_key("MK")  # not a configured partner
