def test_the_first_entry_logged_since_is_found_by_bisection_in_few_reads() -> None:
    from datetime import UTC, datetime, timedelta

    from exchange.domain.evidence import first_logged_since

    start = datetime(2026, 6, 1, tzinfo=UTC)
    chain = {seq: {"logged_at": (start + timedelta(minutes=seq)).isoformat()} for seq in range(1, 1001)}
    reads: list[int] = []

    def at_seq(seq: int) -> dict[str, str] | None:
        reads.append(seq)
        return chain.get(seq)

    assert first_logged_since(1000, at_seq, start + timedelta(minutes=250)) == 250
    assert len(reads) <= 11  # log2(1000): the cost does not grow with the chain
    assert first_logged_since(1000, at_seq, start) == 1
    assert first_logged_since(1000, at_seq, start + timedelta(days=1)) == 1001  # nothing since: after the tip
    assert first_logged_since(0, at_seq, start) == 1
