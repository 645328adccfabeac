"""The circuit breaker against a plain reference model of its rules, over any sequence of calls and clock steps."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from rewards.health import CLOSED, HALF_OPEN, OPEN, CircuitBreaker

OPEN_SECONDS = 5.0
TO_OPEN = 3


@dataclass
class Model:
    """The rules of rewards/health.py, written out plainly (no lock, no shortcut)."""

    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    opened: int = 0

    def allow(self, now: float) -> bool:
        if self.state == CLOSED:
            return True
        if self.state == OPEN and now - self.opened_at >= OPEN_SECONDS:
            self.state = HALF_OPEN
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.state, self.failures, self.probing = CLOSED, 0, False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= TO_OPEN:
            if self.state != OPEN:
                self.opened += 1
            self.state, self.opened_at, self.probing = OPEN, now, False


STEPS = st.lists(
    st.one_of(st.just("allow"), st.just("success"), st.just("failure"), st.floats(0, 7, allow_nan=False)),
    max_size=60,
)


@given(STEPS)
def test_the_breaker_follows_its_rules_whatever_the_calls(steps: list[str | float]) -> None:
    clock = [0.0]
    breaker = CircuitBreaker("redis", TO_OPEN, OPEN_SECONDS, now=lambda: clock[0])
    model = Model()
    for step in steps:
        if isinstance(step, float):
            clock[0] += step
        elif step == "allow":
            assert breaker.allow() == model.allow(clock[0])
        elif step == "success":
            breaker.success()
            model.success()
        else:
            breaker.failure()
            model.failure(clock[0])
        snap = breaker.snapshot()
        assert (snap.state, snap.failures, snap.opened) == (model.state, model.failures, model.opened)
        assert breaker.down == (
            model.state != CLOSED and not (model.state == OPEN and clock[0] - model.opened_at >= OPEN_SECONDS)
        )
