"""Exchange statistics on fakes: a country's report counts only its own records (a third country's report of
the same year is all zeros), by form type and country pair, with overdue, withdrawn and reply times; small counts
suppressed by plumbing's suppression; never a name."""

from __future__ import annotations

from exchange.service_layer import sending
from exchange.service_layer.statistics import exchange_statistics
from services.exchange.tests.unit.fakes import World
from services.exchange.tests.unit.test_exchange_service import AL, ME, XK, me_case_id, notify, reference


def by_label(series: dict) -> dict:
    return dict(zip(series["labels"], series["cells"], strict=True))


def column(table: dict, pair: str) -> dict:
    j = table["column_labels"].index(pair)
    return dict(zip(table["row_labels"], (row[j] for row in table["cells"]), strict=True))


def test_a_countrys_report_counts_its_own_exchange_only_suppressed(world: World) -> None:
    sent = [notify(world, key=f"k-{n}") for n in range(7)]
    world.pump()
    for xk_case, form_id in sent[:6]:  # six acknowledged in a day, the seventh never
        world.clock.advance(hours=2)
        me_case = me_case_id(world, reference(world, xk_case))
        sending.acknowledge_form(world.deps, ME, me_case, form_id, idempotency_key=f"ack-{form_id}")
        world.pump()  # XK holds the acknowledgement when ME's receipt arrives
    sending.withdraw_form(world.deps, XK, sent[0][0], sent[0][1], "sent-in-error", idempotency_key="w")
    world.pump()
    world.clock.advance(days=10)  # the seventh is overdue now
    year = str(world.clock.now().year)

    xk = exchange_statistics(world.deps, XK, period=year)
    assert xk["country"] == "XK"
    assert by_label(xk["forms_by_type"])["notification"] == 7
    assert column(xk["type_by_direction"], "XK>ME")["notification"] == 7
    assert column(xk["type_by_direction"], "ME>XK")["notification"] == 0
    assert xk["type_by_direction"]["row_totals"] == xk["forms_by_type"]["cells"]  # margins as their series
    assert by_label(xk["withdrawn_by_type"])["notification"] == "<5"
    assert by_label(xk["overdue_by_type"])["notification"] == "<5"
    assert by_label(xk["responses"])["notification"] == 6
    assert round(xk["median_reply_days"]["notification"] * 24) == 7  # hours 2, 4, ..., 12: median 7 h
    assert xk["median_reply_days"]["family-assessment-request"] is None

    me = exchange_statistics(world.deps, ME, period=year)
    assert column(me["type_by_direction"], "XK>ME")["notification"] == 7  # ME's own copies, received

    al = exchange_statistics(world.deps, AL, period=year)  # nothing of XK-ME in AL's report
    assert al["forms_by_type"]["total"] == 0 and al["type_by_direction"]["total"] == 0
    assert set(al["type_by_direction"]["column_labels"]) == {"AL>ME", "AL>XK", "ME>AL", "XK>AL"}
    assert "Krasniqi" not in repr([xk, me, al])

    last_year = exchange_statistics(world.deps, XK, period=str(int(year) - 1))
    assert last_year["forms_by_type"]["total"] == 0
