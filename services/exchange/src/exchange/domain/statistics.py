"""Exchange statistics for the coordinators' offices and analysts: codes and counts, never personal data.

Built from one country's own records only (what it sent and what was addressed to it), so a country's report
says nothing about exchanges between two other countries. One row per form (not control messages, not drafts)
whose sending (ours) or arrival (theirs) falls in the year asked for:

- `forms_by_type`: forms per form type;
- `type_by_direction`: form types by country pair (`XK>ME` sent by XK to ME, `ME>XK` received by XK from ME);
  its row totals are `forms_by_type`, suppressed alike;
- `overdue_by_type`: forms whose response came after its deadline or has not come and is overdue now;
- `withdrawn_by_type`: forms withdrawn (by their sender, including those superseded by a correction);
- `responses` and `median_reply_days`: forms that got their response, and the median days from sending (or
  arrival) to it, per form type; a median is withheld (None) under `MIN_N` responses.

Counts go through the suppression functions the service layer passes in (plumbing.suppression, the platform's
one): small counts are shown as "<5", and complementary cells hidden so that no hidden count can be worked out.
A whole year is the only period: smaller periods could be subtracted from one another, which needs the family
suppression identification does for its tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

from exchange.domain.case import Direction, Form, Status, TransnationalCase, status_now
from exchange.domain.catalogue import CONTROL, FormCatalogue
from plumbing.clock import as_utc
from plumbing.suppression import RawSeries, RawTable, S, SuppressSeries, SuppressTable, T

MIN_N = 5


@dataclass(frozen=True)
class FormFact:
    """What statistics read of one form: codes, a year, flags and a duration."""

    form_type: str
    pair: str  # "<sender>><recipient>"
    year: int
    overdue: bool
    withdrawn: bool
    reply_days: float | None


def form_facts(case: TransnationalCase, own: str, catalogue: FormCatalogue, now: datetime) -> list[FormFact]:
    """The facts of one country's record: its forms that were sent or received, control messages left out."""
    return [_fact(form, own, catalogue, now) for form in case.forms if _counted(form)]


def _counted(form: Form) -> bool:
    start = form.sent_at if form.direction is Direction.OUT else form.received_at
    return form.kind != CONTROL and form.status is not Status.DRAFT and start is not None


def _fact(form: Form, own: str, catalogue: FormCatalogue, now: datetime) -> FormFact:
    start = as_utc(form.sent_at if form.direction is Direction.OUT else form.received_at)  # type: ignore[arg-type]
    responded = _responded_at(form, catalogue)
    deadline = as_utc(form.deadline) if form.deadline else None
    late = deadline is not None and (
        (responded is not None and responded > deadline) or status_now(form, catalogue, now) is Status.OVERDUE
    )
    sender, recipient = (
        (own, form.counterpart) if form.direction is Direction.OUT else (form.counterpart, own)
    )
    return FormFact(
        form_type=form.form_type,
        pair=f"{sender}>{recipient}",
        year=start.year,
        overdue=late,
        withdrawn=form.status is Status.WITHDRAWN,
        reply_days=(responded - start).total_seconds() / 86400 if responded and deadline else None,
    )


def _responded_at(form: Form, catalogue: FormCatalogue) -> datetime | None:
    """The answer, or for a form nothing answers, the acknowledgement."""
    answerable = bool(catalogue.answered_by(form.form_type))
    moment = form.answered_at if answerable else form.acknowledged_at
    return as_utc(moment) if moment else None


@dataclass(frozen=True)
class ReplyDays:
    labels: tuple[str, ...]
    n: tuple[int, ...]
    median_days: tuple[float | None, ...]


@dataclass(frozen=True)
class RawReport:
    forms_by_type: RawSeries
    type_by_direction: RawTable
    overdue_by_type: RawSeries
    withdrawn_by_type: RawSeries
    reply_days: ReplyDays


def pairs(own: str, partners: Iterable[str]) -> list[str]:
    """The report's columns: what we sent to each partner, then what each sent us."""
    ordered = sorted(partners)
    return [f"{own}>{p}" for p in ordered] + [f"{p}>{own}" for p in ordered]


def raw_report(
    facts: Iterable[FormFact],
    *,
    year: int,
    form_types: Sequence[str],
    columns: Sequence[str],
    min_n: int = MIN_N,
) -> RawReport:
    """Every table before suppression. Labels are the catalogue's full list of form types, so a zero shows as a
    zero and the table's shape does not tell which types occurred."""
    rows = [f for f in facts if f.year == year and f.form_type in form_types]
    grid = {(t, c): 0 for t in form_types for c in columns}
    for fact in rows:
        if (fact.form_type, fact.pair) in grid:
            grid[(fact.form_type, fact.pair)] += 1
    days: dict[str, list[float]] = {t: [] for t in form_types}
    for fact in rows:
        if fact.reply_days is not None:
            days[fact.form_type].append(fact.reply_days)
    return RawReport(
        forms_by_type=_series(form_types, rows, lambda f: True),
        type_by_direction=RawTable(
            tuple(form_types),
            tuple(columns),
            tuple(tuple(grid[(t, c)] for c in columns) for t in form_types),
        ),
        overdue_by_type=_series(form_types, rows, lambda f: f.overdue),
        withdrawn_by_type=_series(form_types, rows, lambda f: f.withdrawn),
        reply_days=ReplyDays(
            tuple(form_types),
            tuple(len(days[t]) for t in form_types),
            tuple(round(median(days[t]), 1) if len(days[t]) >= min_n else None for t in form_types),
        ),
    )


def _series(labels: Sequence[str], facts: Sequence[FormFact], keep: Callable[[FormFact], bool]) -> RawSeries:
    counts = dict.fromkeys(labels, 0)
    for fact in facts:
        if keep(fact):
            counts[fact.form_type] += 1
    return RawSeries(tuple(labels), tuple(counts[label] for label in labels))


def publish(
    raw: RawReport, suppress_series: SuppressSeries[S], suppress_table: SuppressTable[T]
) -> dict[str, Any]:
    """The report as published: every count through the given suppression; medians as computed (each is
    withheld under MIN_N responses, and `n` is shown only as the suppression shows the counts)."""
    series: Mapping[str, RawSeries] = {
        "forms_by_type": raw.forms_by_type,
        "overdue_by_type": raw.overdue_by_type,
        "withdrawn_by_type": raw.withdrawn_by_type,
    }
    out: dict[str, Any] = {name: suppress_series(s.labels, s.counts) for name, s in series.items()}
    table = raw.type_by_direction
    out["type_by_direction"] = suppress_table(table.rows, table.columns, table.counts)
    out["responses"] = suppress_series(raw.reply_days.labels, raw.reply_days.n)
    out["median_reply_days"] = dict(zip(raw.reply_days.labels, raw.reply_days.median_days, strict=True))
    return out
