"""`make demo`'s output (devstack/demo.py) without a platform: each child's two return timelines side by side,
the message logs beside each other, and a clear word when `make run` is not up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack import demo


def entry(at: str, action: str, **more: Any) -> dict[str, Any]:
    return {"at": f"2026-12-06T{at}.000000+00:00", "action": action, **more}


def story() -> demo.Story:
    child = demo.Child("Arta", "forced-begging", reference="XK-EX-2026-0001")
    child.returns = {
        "XK": {
            "status": "closed",
            "timeline": [
                entry("10:00:00", "open"),
                entry("10:00:05", "form_sent", form_type="return-request"),
                entry("10:09:00", "close", reason="reintegration_completed"),
            ],
        },
        "ME": {
            "status": "closed",
            "timeline": [
                entry("10:00:06", "open"),
                entry("10:00:06", "form_received", form_type="return-request"),
            ],
        },
    }
    child.referral = {"service_type": "child_shelter", "status": "in_progress"}
    log = {"seq": 7, "direction": "sent", "form_type": "return-request", "sender": "XK", "recipient": "ME"}
    return demo.Story([child], {"XK": [log], "ME": [{**log, "seq": 3, "direction": "received"}]})


def test_each_childs_timelines_are_printed_side_by_side() -> None:
    lines = demo.render(story()).splitlines()
    assert "== Arta, forced-begging: transnational case XK-EX-2026-0001 ==" in lines
    title = next(line for line in lines if line.startswith("Kosovo (host)"))
    assert title.index("|") == demo.WIDTH + 1 and "Montenegro (origin) return case: closed" in title
    row = next(line for line in lines if "form_sent return-request" in line)
    left, right = row.split(" | ")
    assert (
        left.strip() == "10:00:05 form_sent return-request"
        and right == "10:00:06 form_received return-request"
    )
    assert any(line.startswith("10:09:00 close (reintegration_completed)") for line in lines)
    logs = next(line for line in lines if line.lstrip().startswith("7 sent"))
    assert "XK->ME" in logs and "    3 received" in logs


def test_without_make_run_it_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("THB_DATA_DIR", str(tmp_path))
    assert demo.main() == 2
    assert "start `make run`" in capsys.readouterr().out
