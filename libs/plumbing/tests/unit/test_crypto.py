"""Field encryption, blind indexes, key files and rotation (no database needed)."""

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from plumbing import keys as keys_module
from plumbing.config import load_platform_config
from plumbing.crypto import FieldCipher, ResponseSealer, normalise_for_index
from plumbing.errors import DecryptionError, KeyConfigurationError
from plumbing.keys import ensure_local_keys, load_key_file, load_keys, rotate

REPO = Path(__file__).resolve().parents[4]
RINGS = {"AL": ("al-data", "al-index"), "XK": ("xk-data", "xk-index")}
RECORD = "7d0c6b1e-4a8f-4f59-9f5e-0d6b8f3c2a11"


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "keys.json"
    ensure_local_keys(path, [ring for pair in RINGS.values() for ring in pair])
    return path


@pytest.fixture
def cipher(key_file) -> FieldCipher:
    return FieldCipher(load_key_file(key_file), RINGS)


def tamper(token: str, part: int) -> str:
    pieces = token.split(":")
    raw = bytearray(pieces[part].encode())
    raw[3] = ord("A") if raw[3] != ord("A") else ord("B")
    pieces[part] = raw.decode()
    return ":".join(pieces)


def test_round_trip_and_format(cipher):
    token = cipher.encrypt("AL", RECORD, "name", "Ëngjëll Hoxha")
    version, key_id, _, _ = token.split(":")
    assert version == "v1" and key_id.startswith("al-data-")
    assert "Hoxha" not in token
    assert cipher.decrypt("AL", RECORD, "name", token) == "Ëngjëll Hoxha"
    # Random nonces: the same value never gives the same ciphertext twice.
    assert cipher.encrypt("AL", RECORD, "name", "x") != cipher.encrypt("AL", RECORD, "name", "x")


def test_associated_data_binds_record_and_field(cipher):
    token = cipher.encrypt("AL", RECORD, "name", "secret")
    with pytest.raises(DecryptionError):
        cipher.decrypt("AL", "another-record", "name", token)
    with pytest.raises(DecryptionError):
        cipher.decrypt("AL", RECORD, "document_number", token)


@pytest.mark.parametrize("part", [2, 3])
def test_tampering_is_detected(cipher, part):
    token = cipher.encrypt("AL", RECORD, "name", "a value long enough to tamper with")
    with pytest.raises(DecryptionError):
        cipher.decrypt("AL", RECORD, "name", tamper(token, part))


@pytest.mark.parametrize("garbage", ["", "v1:x", "v2:al-data-1:AAAA:AAAA", "v1:k:!!!:$$$", "v1:k:AAAA:AAAA"])
def test_malformed_ciphertexts_are_refused(cipher, garbage):
    with pytest.raises(DecryptionError):
        cipher.decrypt("AL", RECORD, "name", garbage)


def test_other_country_cannot_decrypt(cipher, key_file):
    token = cipher.encrypt("AL", RECORD, "name", "secret")
    # Asking with the wrong owner is refused before any key is tried...
    with pytest.raises(DecryptionError, match="owning country"):
        cipher.decrypt("XK", RECORD, "name", token)
    # ...and relabelling the ciphertext with XK's key id fails authentication.
    xk_key = load_key_file(key_file).ring("xk-data").current
    relabelled = token.replace(token.split(":")[1], xk_key)
    with pytest.raises(DecryptionError):
        cipher.decrypt("XK", RECORD, "name", relabelled)
    assert cipher.decryptions == 0 and cipher.decryption_failures == 2


def test_rotation_keeps_old_ciphertexts_readable(key_file):
    before = FieldCipher(load_key_file(key_file), RINGS)
    old_token = before.encrypt("AL", RECORD, "name", "before rotation")
    old_key = before.key_id_of(old_token)

    new_key = rotate(key_file, "al-data")
    after = FieldCipher(load_key_file(key_file), RINGS)
    new_token = after.encrypt("AL", RECORD, "name", "after rotation")

    assert after.key_id_of(new_token) == new_key != old_key
    assert after.decrypt("AL", RECORD, "name", old_token) == "before rotation"
    assert after.needs_reencryption("AL", old_token) and not after.needs_reencryption("AL", new_token)
    rewritten = after.reencrypt("AL", RECORD, "name", old_token)
    assert after.key_id_of(rewritten) == new_key
    assert after.decrypt("AL", RECORD, "name", rewritten) == "before rotation"
    # XK's ring did not move.
    assert load_key_file(key_file).ring("xk-data").ids() == [before._keys.ring("xk-data").current]


def test_rotating_an_unknown_ring_is_refused(key_file):
    with pytest.raises(KeyConfigurationError):
        rotate(key_file, "mk-data")


def test_decryption_counter(cipher):
    tokens = [cipher.encrypt("XK", f"id-{i}", "name", f"n{i}") for i in range(3)]
    assert cipher.decryptions == 0
    for i, token in enumerate(tokens):
        cipher.decrypt("XK", f"id-{i}", "name", token)
    assert cipher.decryptions == 3
    with pytest.raises(DecryptionError):
        cipher.decrypt("XK", "id-0", "name", tokens[1])
    assert (cipher.decryptions, cipher.decryption_failures) == (3, 1)


def test_blind_index_is_stable_normalised_and_separated(cipher):
    first = cipher.blind_index("AL", "family_name", "Hoxha")
    assert first == cipher.blind_index("AL", "family_name", "  HOXHA ")
    assert first.startswith(cipher._keys.ring("al-index").current + ":")
    assert "Hoxha" not in first and "hoxha" not in first
    assert first != cipher.blind_index("AL", "given_name", "Hoxha")  # field is part of the message
    assert first != cipher.blind_index("XK", "family_name", "Hoxha")  # per-country keys
    assert first != cipher.blind_index("AL", "family_name", "Hoxhaj")


def test_blind_index_differs_per_key_and_candidates_cover_rotation(key_file):
    before = FieldCipher(load_key_file(key_file), RINGS)
    old = before.blind_index("AL", "document_number", "AB123")
    rotate(key_file, "al-index")
    after = FieldCipher(load_key_file(key_file), RINGS)
    new = after.blind_index("AL", "document_number", "AB123")
    assert new != old
    assert after.blind_index_candidates("AL", "document_number", "AB123") == [new, old]


def test_index_and_encryption_keys_are_separate(key_file):
    keyset = load_key_file(key_file)
    assert keyset.ring("al-data").keys.keys().isdisjoint(keyset.ring("al-index").keys.keys())
    assert set(keyset.ring("al-data").keys.values()).isdisjoint(keyset.ring("al-index").keys.values())
    with pytest.raises(KeyConfigurationError):
        FieldCipher(keyset, {"AL": ("al-data", "al-data")})


def test_normalisation_uses_nfc():
    assert normalise_for_index("E\u0308ngj\u00ebll") == normalise_for_index("\u00cbngj\u00ebll")


# --------------------------------------------------------------------------------------------- key files


def test_local_key_file_is_private_and_stable(tmp_path):
    path = tmp_path / "nested" / "keys.json"
    first = ensure_local_keys(path, ["al-data"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ensure_local_keys(path, ["al-data", "mk-data"])  # adds a ring, never replaces one
    assert again.ring("al-data").keys == first.ring("al-data").keys
    assert "mk-data" in again.rings
    assert json.loads(path.read_text())["format"] == "thb-keys/1"


def test_world_readable_key_file_is_refused(key_file):
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyConfigurationError, match="accessible to others"):
        load_key_file(key_file)
    os.chmod(key_file, 0o640)  # group read is tolerated outside local mode (Kubernetes fsGroup)
    assert load_key_file(key_file, strict_permissions=False).rings


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(format="other"),
        lambda d: d["rings"]["al-data"].update(current="nope"),
        lambda d: d["rings"]["al-data"]["keys"].update({d["rings"]["al-data"]["current"]: "c2hvcnQ="}),
        lambda d: d["rings"]["al-data"]["keys"].update({d["rings"]["al-data"]["current"]: "***"}),
        lambda d: d["rings"]["al-index"]["keys"].update(d["rings"]["al-data"]["keys"]),
    ],
)
def test_malformed_key_files_are_refused(key_file, mutate):
    data = json.loads(key_file.read_text())
    mutate(data)
    key_file.write_text(json.dumps(data))
    with pytest.raises(KeyConfigurationError):
        load_key_file(key_file)


def settings(mode: str, path: Path) -> SimpleNamespace:
    return SimpleNamespace(is_local=mode == "local", keys_file=path)


def test_local_mode_generates_every_configured_ring(tmp_path):
    config = load_platform_config(REPO / "config" / "platform.yaml")
    keyset = load_keys(settings("local", tmp_path / "keys.json"), config)
    assert set(keyset.rings) == {
        "stored-responses",
        "request-fingerprints",
        "al-data",
        "al-index",
        "xk-data",
        "xk-index",
        "me-data",
        "me-index",
    }
    cipher = FieldCipher.from_config(keyset, config)
    assert cipher.decrypt("ME", RECORD, "f", cipher.encrypt("ME", RECORD, "f", "v")) == "v"


def test_production_refuses_to_start_without_keys(tmp_path):
    config = load_platform_config(REPO / "config" / "platform.yaml")
    with pytest.raises(KeyConfigurationError, match="does not exist"):
        load_keys(settings("production", tmp_path / "keys.json"), config)
    assert not (tmp_path / "keys.json").exists()  # nothing was generated
    ensure_local_keys(tmp_path / "keys.json", ["al-data", "al-index"])
    with pytest.raises(KeyConfigurationError, match="xk-data"):
        load_keys(settings("production", tmp_path / "keys.json"), config)


def test_cli_rotate_and_show_never_print_key_material(key_file, capsys):
    assert keys_module.main(["rotate", "--file", str(key_file), "--ring", "xk-data"]) == 0
    new_id = capsys.readouterr().out.strip()
    keys_module.main(["show", "--file", str(key_file)])
    shown = capsys.readouterr().out
    assert new_id in shown
    for material in json.loads(key_file.read_text())["rings"]["xk-data"]["keys"].values():
        assert material not in shown


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    assert keys_module.main(["show", "--file", str(tmp_path / "absent.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_stored_responses_are_sealed_and_bound_to_their_record(tmp_path):
    config = load_platform_config(REPO / "config" / "platform.yaml")
    keyset = load_keys(settings("local", tmp_path / "keys.json"), config)
    sealer = ResponseSealer(keyset)
    body = b'{"given_names": ["Zzcanary"]}'
    sealed = sealer.seal(body, b"record-1")
    assert b"Zzcanary" not in sealed
    assert sealer.open(sealed, b"record-1") == body
    with pytest.raises(DecryptionError):
        sealer.open(sealed, b"record-2")  # another record's stored response cannot be swapped in
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(DecryptionError):
        sealer.open(tampered, b"record-1")


def test_request_fingerprints_are_keyed_per_service_and_survive_a_rotation(tmp_path):
    from plumbing.crypto import RequestFingerprinter

    path = tmp_path / "keys.json"
    keyset = ensure_local_keys(path, ["request-fingerprints"])
    body = b'{"surnames": ["Hoxha"], "date_of_birth": "2010"}'
    identification = RequestFingerprinter(keyset, "identification")
    stored = identification.fingerprint("op", body)
    assert stored != RequestFingerprinter(keyset, "referral").fingerprint("op", body)
    assert identification.matches(stored, "op", b'{"date_of_birth": "2010", "surnames": ["Hoxha"]}')
    assert not identification.matches(stored, "op", b'{"surnames": ["Hodza"], "date_of_birth": "2010"}')
    assert not identification.matches(stored, "other-op", body)
    rotate(path, "request-fingerprints")
    rotated = RequestFingerprinter(load_key_file(path), "identification")
    assert rotated.matches(stored, "op", body), "a retry stored before the rotation still matches"
    assert rotated.fingerprint("op", body) != stored


def test_a_json_object_is_sealed_as_one_token_bound_to_its_record(cipher):
    token = cipher.encrypt_json("AL", "case-1", "return.plan", {"b": [1, "ë"], "a": None})
    assert "ë" not in token
    assert cipher.decrypt_json("AL", "case-1", "return.plan", token) == {"a": None, "b": [1, "ë"]}
    with pytest.raises(DecryptionError):
        cipher.decrypt_json("AL", "case-2", "return.plan", token)
    not_an_object = cipher.encrypt("AL", "case-1", "return.plan", "[1, 2]")
    with pytest.raises(DecryptionError):
        cipher.decrypt_json("AL", "case-1", "return.plan", not_an_object)
