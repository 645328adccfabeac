"""A voided case is reversed where its points are, also after administrators' merges moved them (pure rule)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rewards.scoring.model import RULE_RATING_AWARD, RULE_VALID_REPORT, RULE_VOID_REVERSAL
from rewards.scoring.rules import reversal_on_void

Line = tuple[int, str, int]  # (citizen_id, rule, points), in ledger (id) order


def merged(lines: list[Line], chain: list[int]) -> list[Line]:
    """The case's lines after merging its holder into each citizen of `chain` in turn (moved_out / moved_in pairs)."""
    out = list(lines)
    holder = lines[0][0]
    for target in chain:
        if target == holder:
            continue
        for index, (citizen, _, points) in enumerate(list(out)):
            if citizen == holder and points != 0:
                out += [(holder, f"moved_out:{index}", -points), (target, f"moved_in:{index}", points)]
        holder = target
    return out


@given(
    award=st.integers(1, 5),
    rating=st.integers(0, 2),
    chain=st.lists(st.integers(1, 4), max_size=4),
)
def test_the_reversal_nets_every_citizen_to_zero(award: int, rating: int, chain: list[int]) -> None:
    lines: list[Line] = [(1, RULE_VALID_REPORT, award)]
    if rating:
        lines.append((1, RULE_RATING_AWARD, rating))
    history = merged(lines, chain)
    decision = reversal_on_void(7, "LZ-1", history)
    assert decision is not None and decision.rule == RULE_VOID_REVERSAL
    holder = chain[-1] if chain else 1
    assert decision.citizen_id == holder  # the last citizen the points were merged into
    after = [*history, (decision.citizen_id, decision.rule, decision.points)]
    nets: dict[int, int] = {}
    for citizen, _, points in after:
        nets[citizen] = nets.get(citizen, 0) + points
    assert set(nets.values()) == {0}
    assert reversal_on_void(7, "LZ-1", after) is None  # a replay reverses nothing twice
