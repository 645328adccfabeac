"""The case lifecycle state machine."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.cases import lifecycle as lc
from rewards.errors import Conflict

statuses = st.sampled_from(lc.STATUSES)


@given(statuses, statuses)
def test_check_transition_agrees_with_the_table(current, target) -> None:
    if target in lc.TRANSITIONS[current]:
        lc.check_transition(current, target)
    else:
        with pytest.raises(Conflict) as err:
            lc.check_transition(current, target)
        assert err.value.status == 409
        assert current in err.value.message and target in err.value.message


def test_documented_paths() -> None:
    path = [lc.REPORTED, lc.FILED, lc.DISPATCHED, lc.PROCESSING, lc.RESOLVED, lc.PROCESSING, lc.RESOLVED, lc.CLOSED]
    for a, b in itertools.pairwise(path):
        assert lc.can_transition(a, b), (a, b)
    assert lc.can_transition(lc.REPORTED, lc.REFUSED)
    for state in lc.FILED_STATES:
        assert lc.can_transition(state, lc.VOIDED)
    for state in (lc.REPORTED, lc.REFUSED, lc.VOIDED):
        assert not lc.can_transition(state, lc.VOIDED)


@given(st.lists(statuses, max_size=30))
def test_no_walk_leaves_the_terminal_states(walk) -> None:
    state = lc.REPORTED
    for target in walk:
        if lc.can_transition(state, target):
            assert state not in (lc.REFUSED, lc.VOIDED)
            state = target
    assert state in lc.STATUSES


def test_unknown_status_is_a_conflict_with_reason() -> None:
    with pytest.raises(Conflict, match="unknown case status"):
        lc.check_transition(lc.FILED, "teleported")
