"""The bodies of the write-path figure (a registration and its screening), shared by the test and its locust
user; kept apart from the locustfile because importing locust patches the interpreter (gevent)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

PERSON = {
    "given_names": ["Bench"],
    "surnames": ["Writer"],
    "sex": "female",
    "date_of_birth": "2009-04",
    "nationalities": ["AL"],
    "unaccompanied_child": True,
    "duplicate_check": {"outcome": "new_person", "reason": "no_candidates"},
}


def screening(case_id: str) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "indicator_set_version": "2026.1",
        "kind": "full",
        "screening_date": datetime.now(UTC).date().isoformat(),
        "answers": [
            {"list_id": "C-LAB", "indicator_id": "C-LAB-RV-01"},
            {"list_id": "C-LAB", "indicator_id": "C-LAB-EX-01"},
        ],
        "flags": ["child_on_the_move", "unaccompanied"],
    }
