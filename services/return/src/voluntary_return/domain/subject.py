"""Who is treated as a child. A child is under 18; where age is uncertain the person is presumed a child until an
age determination decides otherwise (docs/conventions.md). Child status is computed from these facts when a rule
needs it, never stored as a verdict of its own.

The rule is fail-safe on purpose: only a recorded adult whose age is not in doubt is an adult. An age group the
case does not know (missing, misspelled) counts as a child, so that a data error can only make the protections
of the child gate apply, never lift them.
"""

from __future__ import annotations

from dataclasses import dataclass

CHILD, ADULT = "child", "adult"
AGE_GROUPS = (CHILD, ADULT)


def treated_as_child(age_group: str | None, age_uncertain: bool) -> bool:
    """True for a child, for anyone whose age is uncertain (an age determination pending or inconclusive) whatever
    they look like, and for an unknown age group; False only for an adult whose age is not in doubt."""
    return age_uncertain or age_group != ADULT


@dataclass(frozen=True)
class Subject:
    """The age facts of the person a return case is about (as the identification case records them)."""

    age_group: str | None
    age_uncertain: bool = False

    @property
    def treated_as_child(self) -> bool:
        return treated_as_child(self.age_group, self.age_uncertain)
