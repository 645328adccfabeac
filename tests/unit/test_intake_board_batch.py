"""BoardBatch: a batch's board calls noted in order and sent after commit, consecutive applies joined into one."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.batching.board_batch import BoardBatch
from rewards.scoring.model import EntryFacts

Call = tuple[str, object]


class CallLog:
    """A BoardSink that records every call, in order; `fail` names calls that raise."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.calls: list[Call] = []
        self.fail = fail

    def apply(self, entries: Sequence[EntryFacts]) -> None:
        self.calls.append(("apply", [e.entry_id for e in entries]))
        if "apply" in self.fail:
            raise ConnectionError("redis is down")

    def set_eligible(self, citizen_id: int, eligible: bool) -> None:
        self.calls.append(("eligible", (citizen_id, eligible)))
        if "eligible" in self.fail:
            raise ConnectionError("redis is down")

    def set_district(self, citizen_id: int, district: str | None) -> None:
        self.calls.append(("district", (citizen_id, district)))


def entry(entry_id: int) -> EntryFacts:
    return EntryFacts(entry_id, 1, "城关区", 10, "2026-W10", datetime(2026, 3, 2, tzinfo=UTC), True)


def test_nothing_reaches_the_boards_before_send() -> None:
    log = CallLog()
    batch = BoardBatch(log)
    batch.apply([entry(1)])
    batch.set_eligible(7, False)
    assert log.calls == []
    batch.send()
    assert log.calls == [("apply", [1]), ("eligible", (7, False))]
    batch.send()  # sent once: a second send has nothing left
    assert len(log.calls) == 2


def test_consecutive_applies_are_joined_and_citizen_moves_keep_their_place() -> None:
    log = CallLog()
    batch = BoardBatch(log)
    batch.apply([entry(1)])
    batch.apply([entry(2), entry(3)])
    batch.set_district(5, "七里河区")
    batch.apply([entry(4)])
    batch.set_eligible(5, True)
    batch.apply([])
    batch.send()
    assert log.calls == [
        ("apply", [1, 2, 3]),
        ("district", (5, "七里河区")),
        ("apply", [4]),
        ("eligible", (5, True)),
    ]


def test_a_failing_call_does_not_stop_the_others_and_is_raised() -> None:
    log = CallLog(fail=frozenset({"apply"}))
    batch = BoardBatch(log)
    batch.apply([entry(1)])
    batch.set_eligible(2, True)
    batch.apply([entry(3)])
    with pytest.raises(ConnectionError):
        batch.send()
    assert log.calls == [("apply", [1]), ("eligible", (2, True)), ("apply", [3])]


@given(st.lists(st.one_of(st.integers(1, 50), st.tuples(st.integers(1, 9), st.booleans())), max_size=30))
def test_the_sink_sees_the_same_calls_in_the_same_order_only_grouped(ops: list[int | tuple[int, bool]]) -> None:
    direct, batched = CallLog(), CallLog()
    board_batch = BoardBatch(batched)
    for op in ops:
        if isinstance(op, int):
            direct.apply([entry(op)])
            board_batch.apply([entry(op)])
        else:
            direct.set_eligible(*op)
            board_batch.set_eligible(*op)
    board_batch.send()

    def flat(calls: list[Call]) -> list[Call]:
        out: list[Call] = []
        for kind, arg in calls:
            out += [("apply", i) for i in arg] if kind == "apply" and isinstance(arg, list) else [(kind, arg)]
        return out

    assert flat(batched.calls) == flat(direct.calls)
    applies = [k for k, _ in batched.calls]
    assert all(not (a == b == "apply") for a, b in itertools.pairwise(applies))  # never two in a row
