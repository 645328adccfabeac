"""A check of a backing service that never holds its caller longer than a deadline, and never piles up.

A probe runs its check in a daemon thread; callers wait for it at most until their deadline. While one run is under
way (a hung database: the thread waits on its socket) every caller shares it instead of starting another, so a
load balancer probing every second leaves one thread waiting, not one per probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Flight(Generic[T]):
    """One run of a check: its outcome once `done` is set."""

    started: float
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a caller learnt within its deadline: the value, or why there is none (an error or no answer yet)."""

    value: T | None
    error: str | None
    seconds: float  # how long the run took, or has been running

    @property
    def ok(self) -> bool:
        """True when the check answered without an error."""
        return self.error is None


class Probe(Generic[T]):
    """Runs `check` in a thread, one run at a time; `wait` returns by the deadline, answered or not."""

    def __init__(self, name: str, check: Callable[[], T]) -> None:
        self.name = name
        self._check = check
        self._lock = threading.Lock()
        self._flight: Flight[T] | None = None

    def begin(self) -> Flight[T]:
        """Start a run, or join the one under way."""
        with self._lock:
            flight = self._flight
            if flight is not None and not flight.done.is_set():
                return flight
            flight = self._flight = Flight(time.monotonic())
        threading.Thread(target=self._run, args=(flight,), name=f"probe-{self.name}", daemon=True).start()
        return flight

    def _run(self, flight: Flight[T]) -> None:
        try:
            flight.value = self._check()
        except Exception as exc:  # the outcome of the check, reported to every waiting caller
            flight.error = exc
        finally:
            flight.done.set()

    @staticmethod
    def wait(flight: Flight[T], deadline: float) -> Outcome[T]:
        """Wait for a run until `deadline` (time.monotonic()); an unfinished run is reported as such."""
        answered = flight.done.wait(max(0.0, deadline - time.monotonic()))
        seconds = time.monotonic() - flight.started
        if not answered:
            return Outcome(None, f"no answer after {seconds:.1f} s", seconds)
        if flight.error is not None:
            return Outcome(None, type(flight.error).__name__, seconds)
        return Outcome(flight.value, None, seconds)

    def run(self, timeout: float) -> Outcome[T]:
        """Start (or join) a run and wait for it at most `timeout` seconds."""
        return self.wait(self.begin(), time.monotonic() + timeout)
