"""Seed data for the scale figure (bench/test_scale.py): people of Albania, Kosovo and Montenegro, stored as the
identification service stores them, generated on the fly (nothing committed, no data files).

Names come from the small lists below: Albanian given names and surnames (Latin script), Serbian and Montenegrin
ones (Latin and, for Montenegro, Cyrillic), Bosniak ones; each written as people write them: with or without the
diacritics, Albanian names in Serbian spelling (Hoxha/Hodža), Serbian names in English spelling (Jovanović/
Jovanovich), with a typo now and then, sometimes with an alias. Person `i` of a seed is the same whatever the size
(one random generator per index), so a search can be built from any person already seeded.

Storage is production's: `PersonDocument` and `CaseDocument` of the identification service, the person's details
sealed with the platform's key file (`PersonSealer`, AES-GCM, bound to the record id), blocking keys from the
domain (`persons.keys_for`) HMACed with the country's index key, case references reserved from the
service's own counter, and the stamps the repository writes on an insert (owner, created/updated, schema version,
retention). What differs from a registration through the API: the documents are written with `insert_many` in
batches (the API does ~16 registrations/s on this machine), their events are taken as published long ago (empty
outbox) and the first-contact case is written with the person (no pending step).

The access log is seeded the same way: entries in plumbing.access_log's format, hash-chained after the current
tip, the chain head moved to the last one. No service may append to that log while it is seeded (the caller
stops the API): a process that remembers an older tip would walk the new entries one by one.
"""

from __future__ import annotations

import random
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

# ---------------------------------------------------------------------------------------------- name lists

ALBANIAN_FEMALE = (
    "Arta", "Blerta", "Drita", "Elira", "Fatjona", "Gentiana", "Jonida", "Kaltrina", "Lindita", "Mimoza", "Nora",
    "Rozafa", "Shqipe", "Teuta", "Valbona", "Vjosa", "Zana", "Ardita", "Besa", "Brikena", "Dafina", "Edona",
    "Erjona", "Flutura", "Genta", "Hana", "Ilirjana", "Jehona", "Klea", "Lirije", "Merita", "Qëndresa", "Rita",
    "Sibora", "Vlora", "Xhensila", "Zamira", "Albana", "Ema", "Fjolla", "Donjeta", "Shpresa", "Dhurata",
    "Afërdita", "Mirela", "Anila", "Elda", "Erisa", "Kejsi", "Çiljeta",
)  # fmt: skip
ALBANIAN_MALE = (
    "Arben", "Agron", "Ardit", "Bujar", "Besnik", "Dritan", "Edmond", "Erion", "Fatmir", "Gëzim", "Ilir", "Jetmir",
    "Klodian", "Lulzim", "Mërgim", "Nderim", "Përparim", "Qamil", "Rrahim", "Shkëlqim", "Valon", "Xhevdet",
    "Ylber", "Zef", "Arianit", "Blerim", "Driton", "Engjëll", "Florent", "Hysen", "Kujtim", "Leutrim", "Mentor",
    "Granit", "Alban", "Endrit", "Ermal", "Gjergj", "Kastriot", "Sokol",
)  # fmt: skip
ALBANIAN_SURNAMES = (
    "Hoxha", "Krasniqi", "Berisha", "Gashi", "Shehu", "Kelmendi", "Morina", "Hysa", "Dervishi", "Leka", "Çela",
    "Xhaferi", "Basha", "Kola", "Marku", "Gjoka", "Lika", "Rama", "Shala", "Bytyqi", "Osmani", "Musliu",
    "Ahmeti", "Sadiku", "Rexhepi", "Zeneli", "Halili", "Muça", "Kastrati", "Gjergji", "Prenga", "Dushku", "Thaçi",
    "Ibrahimi", "Daci", "Qosja", "Llapi", "Rrustemi", "Zhuri", "Bajrami", "Hasani", "Mehmeti", "Kryeziu",
    "Gjonaj", "Deda", "Toska", "Meta", "Topalli", "Xhafa", "Spahiu",
)  # fmt: skip
SERBIAN_FEMALE = (
    "Milica", "Jelena", "Ana", "Jovana", "Marija", "Dragana", "Ivana", "Tijana", "Sanja", "Vesna", "Snežana",
    "Đurđa", "Ljiljana", "Nataša", "Bojana", "Katarina", "Maša", "Teodora", "Anđela", "Sonja", "Milena",
    "Danijela", "Gordana", "Radmila", "Vukosava",
)  # fmt: skip
SERBIAN_MALE = (
    "Marko", "Nikola", "Luka", "Stefan", "Miloš", "Đorđe", "Nemanja", "Vuk", "Petar", "Dušan", "Vladimir",
    "Aleksandar", "Bojan", "Radovan", "Slobodan", "Željko", "Goran", "Dragan", "Milan", "Srđan", "Lazar",
    "Ognjen", "Budimir", "Vasilije", "Momčilo",
)  # fmt: skip
MONTENEGRIN_SURNAMES = (
    "Vujović", "Popović", "Radović", "Jovanović", "Đurović", "Vukčević", "Perović", "Marković", "Bulatović",
    "Kaluđerović", "Šćekić", "Ražnatović", "Petrović", "Nikolić", "Lukić", "Vuković", "Đukanović", "Mićunović",
    "Knežević", "Dragović", "Šaranović", "Ivanović", "Pejović", "Milić", "Bošković", "Lazović", "Stanišić",
    "Kovačević", "Medojević", "Cerović", "Vujošević", "Radulović", "Lalević", "Zečević", "Backović",
)  # fmt: skip
BOSNIAK_FEMALE = ("Emina", "Amra", "Selma", "Aida", "Lejla", "Merima", "Dženana", "Alma", "Edina", "Šejla")
BOSNIAK_MALE = ("Adnan", "Emir", "Mirsad", "Damir", "Haris", "Senad", "Amel", "Edin", "Nedžad", "Almir")
BOSNIAK_SURNAMES = (
    "Hadžić",
    "Mujović",
    "Kurpejović",
    "Ljuljanović",
    "Šabović",
    "Muratović",
    "Dacić",
    "Nurković",
)

# Serbian Latin -> Cyrillic (digraphs first); Montenegrin documents are written in either script.
_TO_CYRILLIC = (
    ("dž", "џ"), ("lj", "љ"), ("nj", "њ"), ("a", "а"), ("b", "б"), ("c", "ц"), ("č", "ч"), ("ć", "ћ"), ("d", "д"),
    ("đ", "ђ"), ("e", "е"), ("f", "ф"), ("g", "г"), ("h", "х"), ("i", "и"), ("j", "ј"), ("k", "к"), ("l", "л"),
    ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"), ("š", "ш"), ("t", "т"), ("u", "у"),
    ("v", "в"), ("z", "з"), ("ž", "ж"),
)  # fmt: skip
# How an Albanian name is written in Serbian spelling (Hoxha -> Hodža, Krasniqi -> Krasnići).
_ALBANIAN_IN_SERBIAN = (
    ("xh", "dž"),
    ("gj", "đ"),
    ("sh", "š"),
    ("zh", "ž"),
    ("ç", "č"),
    ("q", "ć"),
    ("ë", "e"),
)
# Without diacritics, as on a keyboard without them.
_ASCII = (("ë", "e"), ("ç", "c"), ("č", "c"), ("ć", "c"), ("š", "s"), ("ž", "z"), ("đ", "dj"))
# English transcription (Jovanović -> Jovanovich, Šćekić -> Shchekich).
_ENGLISH = (("dž", "j"), ("č", "ch"), ("ć", "ch"), ("š", "sh"), ("ž", "zh"), ("đ", "dj"))


def _replace(text: str, table: Sequence[tuple[str, str]]) -> str:
    out = text.lower()
    for source, target in table:
        out = out.replace(source, target)
    return out


def _title(text: str) -> str:
    return text[:1].upper() + text[1:]


def cyrillic(name: str) -> str:
    return _title(_replace(name, _TO_CYRILLIC))


def typo(name: str, rng: random.Random) -> str:
    """One slip of a hand or an ear: a letter dropped, doubled, swapped with the next, or a vowel changed."""
    if len(name) < 4:
        return name
    at = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return name[:at] + name[at + 1 :]
    if kind == 1:
        return name[:at] + name[at] + name[at:]
    if kind == 2:
        return name[:at] + name[at + 1] + name[at] + name[at + 2 :]
    vowels = "aeiou"
    return name[:at] + rng.choice(vowels) + name[at + 1 :] if name[at] in vowels else name


def spelling(name: str, origin: str, rng: random.Random, *, cyrillic_share: float = 0.0) -> str:
    """One way the name is written: as given, without diacritics, in the other language's spelling, in Cyrillic,
    and 4% of the time with a typo."""
    roll = rng.random()
    if origin == "albanian":
        written = (
            name if roll < 0.6 else _title(_replace(name, _ASCII if roll < 0.85 else _ALBANIAN_IN_SERBIAN))
        )
    elif roll < cyrillic_share:
        written = cyrillic(name)
    else:
        roll = rng.random()
        written = name if roll < 0.65 else _title(_replace(name, _ASCII if roll < 0.9 else _ENGLISH))
    if rng.random() < 0.04:
        written = typo(written, rng)
    return unicodedata.normalize("NFC", written)


# ------------------------------------------------------------------------------------------------- people

# Where people are registered, and by whom (need-to-know: an agency reads its own records).
COUNTRIES = (("AL", 40), ("XK", 30), ("ME", 30))
AGENCIES = (
    ("state-police", 30), ("border-police", 30), ("social-services", 15), ("child-protection", 15),
    ("labour-inspectorate", 10),
)  # fmt: skip
# Name origin by country of registration: (origin, weight, share of Cyrillic spellings).
ORIGINS = {
    "AL": (("albanian", 95, 0.0), ("montenegrin", 5, 0.1)),
    "XK": (("albanian", 85, 0.0), ("montenegrin", 15, 0.3)),
    "ME": (("montenegrin", 65, 0.45), ("albanian", 22, 0.0), ("bosniak", 13, 0.2)),
}
NATIONALITY = {"AL": ("AL", "sqi"), "XK": ("XK", "sqi"), "ME": ("ME", "srp")}
# Registrations spread over the last two years (retention: P10Y from closure, so none is due).
HISTORY = timedelta(days=2 * 365)
OFFICERS_PER_AGENCY = 40


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


@dataclass(frozen=True)
class Person:
    index: int
    id: str
    case_id: str
    country: str
    agency: str
    officer: str
    origin: str
    sex: str
    given_names: list[str]
    surnames: list[str]
    aliases: list[str]
    date_of_birth: str
    nationalities: list[str]
    languages: list[str]
    documents: list[dict[str, str]]
    created_at: datetime
    updated_at: datetime
    # The canonical names (before spelling variants), for building searches that should find her.
    canonical: tuple[str, str] = field(default=("", ""))


def _names(origin: str, sex: str, rng: random.Random) -> tuple[str, str]:
    given: Sequence[str]
    family: Sequence[str]
    if origin == "albanian":
        given, family = (ALBANIAN_FEMALE if sex == "female" else ALBANIAN_MALE), ALBANIAN_SURNAMES
    elif origin == "bosniak":
        given, family = (BOSNIAK_FEMALE if sex == "female" else BOSNIAK_MALE), BOSNIAK_SURNAMES
    else:
        given, family = (SERBIAN_FEMALE if sex == "female" else SERBIAN_MALE), MONTENEGRIN_SURNAMES
    # Surnames are not equally common: a Zipf-like weight keeps the first ones frequent.
    surname = rng.choices(family, weights=[1 / (rank + 1) ** 0.7 for rank in range(len(family))])[0]
    return rng.choice(given), surname


def officer_sub(country: str, agency: str, number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"thb-bench-officer:{country}:{agency}:{number}"))


def person(seed: int, index: int, now: datetime) -> Person:
    """Person `index` of `seed`: always the same person, whatever else was generated."""
    rng = random.Random(seed * 10_000_019 + index)
    country = _weighted(rng, COUNTRIES)
    agency = _weighted(rng, AGENCIES)
    origin, _, cyrillic_share = rng.choices(ORIGINS[country], weights=[o[1] for o in ORIGINS[country]])[0]
    sex = "female" if rng.random() < 0.7 else "male"
    given, family = _names(origin, sex, rng)
    aliases: list[str] = []
    if rng.random() < 0.08:
        other_given, _ = _names(origin, sex, rng)
        aliases.append(f"{spelling(other_given, origin, rng)} {spelling(family, origin, rng)}")
    born = date(now.year, 1, 1) - timedelta(days=rng.randrange(6 * 365, 55 * 365))
    precision = rng.random()
    date_of_birth = (
        born.isoformat() if precision < 0.6 else born.isoformat()[:7] if precision < 0.8 else str(born.year)
    )
    nationality, language = NATIONALITY[country if rng.random() < 0.85 else _weighted(rng, COUNTRIES)]
    documents = (
        [
            {
                "type": "passport",
                "number": f"{nationality[0]}{rng.randrange(10**7):07d}",
                "issuing_country": nationality,
            }
        ]
        if rng.random() < 0.4
        else []
    )
    created = now - HISTORY * rng.random() - timedelta(minutes=5)
    updated = (
        created if rng.random() < 0.8 else created + (now - timedelta(minutes=5) - created) * rng.random()
    )
    return Person(
        index=index,
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        case_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        country=country,
        agency=agency,
        officer=officer_sub(country, agency, rng.randrange(OFFICERS_PER_AGENCY)),
        origin=origin,
        sex=sex,
        given_names=[spelling(given, origin, rng, cyrillic_share=cyrillic_share)],
        surnames=[spelling(family, origin, rng, cyrillic_share=cyrillic_share)],
        aliases=aliases,
        date_of_birth=date_of_birth,
        nationalities=[nationality],
        languages=[language],
        documents=documents,
        created_at=created,
        updated_at=updated,
        canonical=(given, family),
    )


def search_body(seed: int, index: int, now: datetime) -> dict[str, Any]:
    """A duplicate search an officer would type for person `index`: her names spelt again (another variant,
    maybe another typo), her birth year and sex."""
    target = person(seed, index, now)
    rng = random.Random(seed * 7_000_003 + index)
    given, family = target.canonical
    share = 0.3 if target.origin != "albanian" else 0.0
    return {
        "given_names": [spelling(given, target.origin, rng, cyrillic_share=share)],
        "surnames": [spelling(family, target.origin, rng, cyrillic_share=share)],
        "date_of_birth": target.date_of_birth[:4],
        "sex": target.sex,
    }


# ------------------------------------------------------------------------------------- stored as production


@dataclass
class Seeder:
    """Writes people 0..n-1 of `seed` (and their first-contact cases) as the identification service stores them.
    `runtime` is identification's `bootstrap.Runtime` built from the API's own environment (same key file, same
    platform configuration, same database)."""

    runtime: Any
    seed: int = 1
    batch: int = 1000
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    seeded: int = 0
    # Seeded people by (country, agency): their ids, case ids and updated_at (for picking what to read).
    by_scope: dict[tuple[str, str], list[tuple[str, str, datetime]]] = field(default_factory=dict)
    ids_by_country: dict[str, list[int]] = field(default_factory=dict)

    def seed_to(self, total: int, progress: Callable[[int, float], None] | None = None) -> float:
        """Seed people until `total` are seeded; the seconds it took."""
        started = time.perf_counter()
        while self.seeded < total:
            count = min(self.batch, total - self.seeded)
            self._write(range(self.seeded, self.seeded + count))
            self.seeded += count
            if progress is not None:
                progress(self.seeded, time.perf_counter() - started)
        return time.perf_counter() - started

    def _write(self, indexes: range) -> None:
        from identification.adapters.documents import CaseDocument, PersonDocument

        people = [person(self.seed, i, self.now) for i in indexes]
        references = self._references(people)
        persons, cases = [], []
        for item in people:
            person_doc, case_doc = self._documents(item, references)
            persons.append(person_doc)
            cases.append(case_doc)
            self.by_scope.setdefault((item.country, item.agency), []).append(
                (item.id, item.case_id, item.updated_at)
            )
            self.ids_by_country.setdefault(item.country, []).append(item.index)
        PersonDocument._get_collection().insert_many(persons, ordered=False)
        CaseDocument._get_collection().insert_many(cases, ordered=False)

    def _references(self, people: list[Person]) -> dict[str, str]:
        """Case references from the service's own counter (one `$inc` per country and year for the batch)."""
        from pymongo import ReturnDocument

        from identification.adapters.documents import CaseCounter

        wanted = Counter((p.country, p.created_at.year) for p in people)
        next_number: dict[tuple[str, int], int] = {}
        for (country, year), count in wanted.items():
            doc = CaseCounter._get_collection().find_one_and_update(
                {"_id": f"{country}-{year}"},
                {"$inc": {"value": count}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            next_number[(country, year)] = int(doc["value"]) - count + 1
        out: dict[str, str] = {}
        for p in people:
            key = (p.country, p.created_at.year)
            out[p.id] = f"{p.country}-{key[1]}-{next_number[key]:05d}"
            next_number[key] += 1
        return out

    def _documents(self, item: Person, references: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        from identification.adapters.documents import CaseDocument, PersonDocument
        from identification.domain import names
        from identification.service_layer import persons
        from plumbing.clock import to_millis
        from plumbing.retention import first_look

        deps, config = self.runtime.deps, self.runtime.startup.config
        today = item.created_at.date()
        body: dict[str, Any] = {
            "given_names": item.given_names,
            "surnames": item.surnames,
            "aliases": item.aliases,
            "date_of_birth": item.date_of_birth,
            "documents": item.documents,
        }
        errors: list[Any] = []
        birth = persons.parse_birth(body, today, errors)
        if errors:
            raise ValueError(f"seed person {item.index}: {errors}")
        # As register_person builds them (service_layer/persons.py).
        details: dict[str, Any] = {
            "given_names": persons._nfc_list(body["given_names"]),
            "surnames": persons._nfc_list(body["surnames"]),
            "aliases": persons._nfc_list(body["aliases"]),
            "date_of_birth": item.date_of_birth,
            "birth": persons.birth_to_record(birth),
            "documents": persons._documents(body["documents"]),
            "age_determinations": [],
        }
        blocking_keys, year_keys = persons.keys_for(deps, item.country, details)
        created, updated = to_millis(item.created_at), to_millis(item.updated_at)
        stamps: dict[str, Any] = {
            "owner_country": item.country,
            "owner_agency": item.agency,
            "created_at": created,
            "created_by": item.officer,
            "updated_at": updated,
            "updated_by": item.officer,
            "version": 1 if updated == created else 2,
            "pending_events": [],
            "pending_steps": [],
        }
        person_doc = PersonDocument(
            id=item.id,
            sealed=deps.sealer.seal(item.country, item.id, details),
            blocking_keys=blocking_keys,
            year_keys=year_keys,
            keys_scheme=names.KEY_SCHEME,
            sex=item.sex,
            nationalities=item.nationalities,
            residence_country=item.country,
            languages=item.languages,
            first_case_id=item.case_id,
            duplicate_check={"outcome": "new_person", "reason": "no_candidates"},
            assigned_to=[item.officer],
            schema_version=PersonDocument.SCHEMA_VERSION,
            retention_class=PersonDocument.RETENTION_CLASS,
            retention_due_at=first_look(PersonDocument, created, config),
            **stamps,
        )
        case_doc = CaseDocument(
            id=item.case_id,
            person_id=item.id,
            reference=references[item.id],
            status="open",
            responsible_officer=item.officer,
            assigned_to=[item.officer],
            timeline=[{"at": created, "by": item.officer, "agency": item.agency, "type": "opened"}],
            schema_version=CaseDocument.SCHEMA_VERSION,
            retention_class=CaseDocument.RETENTION_CLASS,
            retention_due_at=first_look(CaseDocument, created, config),
            **{**stamps, "updated_at": created, "updated_by": item.officer, "version": 1},
        )
        person_doc.validate()
        case_doc.validate()
        return person_doc.to_mongo().to_dict(), case_doc.to_mongo().to_dict()

    def scope(self, country: str, agency: str) -> list[tuple[str, str, datetime]]:
        return self.by_scope.get((country, agency), [])


def seed_access_log(
    access_log: Any,
    count: int,
    person_ids: Sequence[str],
    *,
    seed: int = 1,
    batch: int = 1000,
    now: datetime | None = None,
    azp: str = "thb-web",
) -> tuple[int, float]:
    """Append `count` entries to `access_log` (a plumbing.access_log.AccessLog) as officers' reads of the given
    people would have written them: same fields, same hash chain after the current tip, the head moved to the
    last one. Nothing else may append meanwhile. Returns (last seq, seconds)."""
    from plumbing.access_log import FORMAT_VERSION, entry_hash
    from plumbing.clock import to_millis

    started = time.perf_counter()
    rng = random.Random(seed * 3_000_017 + count)
    now = now or datetime.now(UTC)
    access_log._ensure_indexes()
    seq, previous = access_log.chain.read_tip()
    operations = (
        ("identification.entrypoints.http.get_person", "person", 1),
        ("identification.entrypoints.http.get_case", "case", 2),
        ("identification.entrypoints.http.list_persons", "person", 20),
    )
    written = 0
    while written < count:
        docs = []
        for _ in range(min(batch, count - written)):
            seq += 1
            written += 1
            country, _ = NATIONALITY[_weighted(rng, COUNTRIES)]
            agency = _weighted(rng, AGENCIES)
            operation, resource, many = rng.choice(operations)
            doc = {
                "_id": seq,
                "v": FORMAT_VERSION,
                # Older entries first: the seeded reads end a few minutes before the run.
                "time": to_millis(now - timedelta(seconds=(count - written) * 2 + 300)),
                "sub": officer_sub(country, agency, rng.randrange(OFFICERS_PER_AGENCY)),
                "azp": azp,
                "country": country,
                "agency": agency,
                "roles": ["police-officer"],
                "acting_user": None,
                "purpose": "identification",
                "operation_id": operation,
                "resource_type": resource,
                "ids": [rng.choice(person_ids) for _ in range(many)] if person_ids else [],
                "outcome": "ok",
                "request_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                "trace_id": None,
                "prev_hash": previous,
            }
            doc["hash"] = entry_hash(doc)
            previous = doc["hash"]
            docs.append(doc)
        access_log.entries.insert_many(docs, ordered=True)
    access_log.chain.advance(seq, previous)
    return seq, time.perf_counter() - started
