"""One batch's board updates, sent together after its commit: the awards of a batch in one pipelined apply.

The case flows hand every committed ledger entry to their BoardSink from an after-commit effect, one call per
award (one Redis round trip each). A batch of intake events runs its flows over a `BoardBatch`: those effects only
note the calls, in order, and the one effect the batch queues last sends them, consecutive `apply` calls joined
into one (Boards.apply pipelines a list). Nothing is noted for a step rolled back (its effects are dropped with it),
and nothing at all is sent if the batch does not commit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from rewards.flows import CaseFlows
from rewards.scoring.ledger import PendingLedger
from rewards.scoring.model import EntryFacts
from rewards.scoring.ports import BoardSink


class BoardBatch:
    """A BoardSink that keeps the calls of one transaction and sends them, in order, when `send` runs."""

    def __init__(self, sink: BoardSink) -> None:
        self.sink = sink
        self._calls: list[list[EntryFacts] | Callable[[], None]] = []

    def apply(self, entries: Sequence[EntryFacts]) -> None:
        """Note the entries (joined with the entries noted just before them)."""
        last = self._calls[-1] if self._calls else None
        if isinstance(last, list):
            last.extend(entries)
        else:
            self._calls.append(list(entries))

    def set_eligible(self, citizen_id: int, eligible: bool) -> None:
        """Note the eligibility change (sent after the entries noted before it)."""
        sink = self.sink
        self._calls.append(lambda: sink.set_eligible(citizen_id, eligible))

    def set_district(self, citizen_id: int, district: str | None) -> None:
        """Note the district change (sent after the entries noted before it)."""
        sink = self.sink
        self._calls.append(lambda: sink.set_district(citizen_id, district))

    def send(self) -> None:
        """Send the noted calls in order; every one is tried, the first failure is raised at the end.

        Run as the batch's last after-commit effect: a failure reaches the database's handler like any board
        update that failed (the boards are marked behind and the projector catches them up from the ledger).
        """
        calls, self._calls = self._calls, []
        first: Exception | None = None
        for call in calls:
            try:
                if isinstance(call, list):
                    if call:
                        self.sink.apply(call)
                else:
                    call()
            except Exception as exc:  # the ledger is committed: try the others, report the failure
                first = first or exc
        if first is not None:
            raise first


def batched_flows(flows: CaseFlows, *, defer_ledger: bool = False) -> tuple[CaseFlows, BoardBatch]:
    """The flows writing to a new BoardBatch, and the batch; queue `BoardBatch.send` last (`uow.after_commit`).

    defer_ledger: the flows' ledger lines are queued (ScoringService.pending) and written together by
    `scoring.write_pending`, which the caller runs once the batch's cases are flushed.
    Shallow copies: the shared flows and scoring service are not changed (other requests use them meanwhile).
    """
    board_batch = BoardBatch(flows.boards)
    scoring = copy.copy(flows.scoring)
    scoring.sink = board_batch
    scoring.pending = PendingLedger() if defer_ledger else None
    ours = copy.copy(flows)
    ours.scoring, ours.boards = scoring, board_batch
    return ours, board_batch
