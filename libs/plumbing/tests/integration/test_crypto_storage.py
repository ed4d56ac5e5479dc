"""Encrypted fields and blind indexes stored through the repository in the real Mongo-wire server."""

import uuid

import pytest
from mongoengine import ListField, StringField

from plumbing.auth import Caller
from plumbing.crypto import FieldCipher
from plumbing.documents import OwnedDocument
from plumbing.errors import DecryptionError
from plumbing.keys import ensure_local_keys, load_key_file, rotate
from plumbing.repository import ScopedRepository

pytestmark = pytest.mark.integration

ALIAS = "plumbing-crypto-tests"
RINGS = {"AL": ("al-data", "al-index"), "XK": ("xk-data", "xk-index")}


class Person(OwnedDocument):
    meta = {"collection": "people", "db_alias": ALIAS, "indexes": ["family_name_index"]}
    RETENTION_CLASS = "person"
    family_name = StringField()  # ciphertext
    family_name_index = ListField(StringField())  # blind-index token(s)


def manager(country="AL") -> Caller:
    return Caller(
        sub="cm-1",
        azp="identification-ui",
        country=country,
        agency=f"{country.lower()}-ministry",
        roles=frozenset({"case-manager"}),
        acting_user=None,
        is_machine=False,
        token="not-a-real-token",
    )


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "keys.json"
    ensure_local_keys(path, [ring for pair in RINGS.values() for ring in pair])
    return path


def store(cipher: FieldCipher, country: str, name: str) -> Person:
    person = Person(id=str(uuid.uuid4()))
    person.family_name = cipher.encrypt(country, person.id, "family_name", name)
    person.family_name_index = [cipher.blind_index(country, "family_name", name)]
    return ScopedRepository(Person, manager(country)).insert(person)


def test_ciphertext_at_rest_and_duplicate_lookup_by_blind_index(database, key_file):
    cipher = FieldCipher(load_key_file(key_file), RINGS)
    first = store(cipher, "AL", "Canary-Hoxha")
    store(cipher, "AL", "Someone Else")
    store(cipher, "XK", "Canary-Hoxha")
    raw = database.people.find_one({"_id": first.id})
    assert "Canary" not in str(raw)

    repo = ScopedRepository(Person, manager("AL"))
    token = cipher.blind_index("AL", "family_name", "canary-hoxha ")
    matches = repo.find(family_name_index=token)
    assert [p.id for p in matches] == [
        first.id
    ]  # the XK record with the same name is neither visible nor equal
    assert cipher.decrypt("AL", first.id, "family_name", matches[0].family_name) == "Canary-Hoxha"
    assert cipher.decryptions == 1


def test_copied_ciphertext_does_not_decrypt_in_another_record(database, key_file):
    cipher = FieldCipher(load_key_file(key_file), RINGS)
    victim, other = store(cipher, "AL", "Original"), store(cipher, "AL", "Other")
    # Someone with database access copies one person's ciphertext into another record.
    database.people.update_one({"_id": other.id}, {"$set": {"family_name": victim.family_name}})
    copied = ScopedRepository(Person, manager("AL")).get(other.id)
    with pytest.raises(DecryptionError):
        cipher.decrypt("AL", other.id, "family_name", copied.family_name)


def test_after_rotation_old_records_decrypt_and_are_found(database, key_file):
    before = FieldCipher(load_key_file(key_file), RINGS)
    old = store(before, "AL", "Rotated Name")
    rotate(key_file, "al-data")
    rotate(key_file, "al-index")
    after = FieldCipher(load_key_file(key_file), RINGS)
    candidates = after.blind_index_candidates("AL", "family_name", "Rotated Name")
    found = ScopedRepository(Person, manager("AL")).find(family_name_index__in=candidates)
    assert [p.id for p in found] == [old.id]
    assert after.decrypt("AL", old.id, "family_name", found[0].family_name) == "Rotated Name"
    assert after.needs_reencryption("AL", found[0].family_name)
