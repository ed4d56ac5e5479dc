"""Evidence of a country's exchange: its message log's hash chain, and each stored form against the digest
logged when it was sent or received. Either side can prove what was sent, when, by whom, and that it was
received; altering a stored form's bytes is detected."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.domain.evidence import ChainReport, content_digest
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, inbox_caller, to_case
from plumbing.errors import DecryptionError


@dataclass(frozen=True)
class EvidenceReport:
    chain: ChainReport
    altered_forms: list[str] = field(default_factory=list)  # form ids whose stored content no longer matches

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.altered_forms


def verify_evidence(deps: Deps, country: str) -> EvidenceReport:
    """The `verify` of one country: the chain, then every sent or received form's content against its log."""
    chain = deps.message_log.verify(country)
    logged = {
        (entry["form_id"], entry["envelope_id"]): entry["content_digest"]
        for entry in deps.message_log.entries(country)
    }
    altered: list[str] = []
    for doc in cases(deps, inbox_caller(country)).find():
        for form in to_case(doc).forms:
            if form.envelope_id is None or form.id not in doc.contents:
                continue  # a draft: nothing was logged for it
            try:
                digest = content_digest(deps.contents.open(country, doc.id, form.id, doc.contents[form.id]))
            except (DecryptionError, ValueError):
                altered.append(form.id)
                continue
            expected = logged.get((form.id, form.envelope_id))
            if digest != form.content_digest or (expected is not None and digest != expected):
                altered.append(form.id)
    return EvidenceReport(chain, sorted(altered))
