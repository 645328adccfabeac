"""Watch a running service's standings against the award timeline: no stale answer may pass as fresh.

Every award a fault test makes is a verdict request whose send time and known-committed time it records (the 200
reply, or the 503 of a commit whose reply the proxy dropped: PostgreSQL had acknowledged it). A watcher thread
polls `/api/v1/citizens/{openid}/standing` meanwhile. An answer read over [t0, t1] is right when its all-time
points lie between the awards certainly committed before t0 and those sent before t1 (one point each). A wrong
answer with `stale: false` is a stale answer marked fresh; a wrong one with `stale: true` is a wrong ledger answer.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx


@dataclass
class Award:
    """One award (one point): when its verdict was sent and when it was known committed (None: not yet)."""

    openid: str
    case_id: str
    sent: float
    committed: float | None = None


@dataclass(frozen=True)
class Answer:
    """One standing answer as a client saw it."""

    openid: str
    t0: float
    t1: float
    status: int
    stale: bool
    points: int  # all-time points (0 when the answer failed)


@dataclass
class Timeline:
    """The awards of a scenario, by citizen."""

    awards: dict[str, list[Award]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, openid: str, case_id: str) -> Award:
        """Record a verdict about to be sent."""
        award = Award(openid, case_id, time.monotonic())
        with self.lock:
            self.awards[openid].append(award)
        return award

    def committed(self, award: Award, at: float | None = None) -> None:
        """Record that the award is committed (by `at`, default now)."""
        award.committed = at if at is not None else time.monotonic()

    def expected(self, openid: str) -> int:
        """Points the ledger must hold for a citizen (each award committed exactly once)."""
        with self.lock:
            return sum(1 for a in self.awards[openid] if a.committed is not None)

    def explain(self, answer: Answer) -> str:
        """Why an answer is wrong: its points, the bounds, and how long the newest award it lacks had been in."""
        low, high = self.bounds(answer.openid, answer.t0, answer.t1)
        with self.lock:
            done = sorted(a.committed for a in self.awards[answer.openid] if a.committed is not None)
        lag = answer.t0 - done[low - 1] if answer.points < low and low else 0.0
        kind = "stale" if answer.stale else "fresh"
        return f"{answer.openid} {kind} {answer.points} points, right: {low}..{high} ({lag:.2f} s after the commit)"

    def bounds(self, openid: str, t0: float, t1: float) -> tuple[int, int]:
        """(fewest, most) points a right answer read over [t0, t1] may show."""
        with self.lock:
            awards = list(self.awards[openid])
        low = sum(1 for a in awards if a.committed is not None and a.committed < t0)
        high = sum(1 for a in awards if a.sent < t1)
        return low, high


@dataclass(frozen=True)
class Verdicts:
    """What the watcher saw, judged against the timeline."""

    answers: int
    stale: int
    unreachable: int
    wrong_fresh: list[Answer]
    wrong_stale: list[Answer]
    errors: list[Answer]  # answers other than 200 (a standing must never fail while the ledger answers)


class StandingWatcher:
    """Polls the standings of some citizens in a thread until stopped; judges the answers afterwards."""

    def __init__(self, base_url: str, headers: dict[str, str], openids: list[str], pause: float = 0.05) -> None:
        self.base_url = base_url
        self.headers = headers
        self.openids = openids
        self.pause = pause
        self.answers: list[Answer] = []
        self.unreachable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="standing-watcher", daemon=True)

    def start(self) -> StandingWatcher:
        """Start polling."""
        self._thread.start()
        return self

    def retarget(self, base_url: str) -> None:
        """Follow the service to its new address after a restart."""
        self.base_url = base_url

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        with httpx.Client(headers=self.headers, timeout=30) as http:
            while not self._stop.is_set():
                for openid in self.openids:
                    self._poll(http, openid)
                self._stop.wait(self.pause)

    def _poll(self, http: httpx.Client, openid: str) -> None:
        t0 = time.monotonic()
        try:
            r = http.get(f"{self.base_url}/api/v1/citizens/{openid}/standing")
        except httpx.HTTPError:  # the service is down (restarting): nothing answered, nothing to judge
            self.unreachable += 1
            return
        t1 = time.monotonic()
        if r.status_code != 200:
            self.answers.append(Answer(openid, t0, t1, r.status_code, False, 0))
            return
        body = r.json()
        self.answers.append(Answer(openid, t0, t1, 200, bool(body["stale"]), int(body["all_time"]["points"])))

    def judge(self, timeline: Timeline) -> Verdicts:
        """Judge every answer against the award timeline."""
        wrong_fresh, wrong_stale, errors = [], [], []
        for a in self.answers:
            if a.status != 200:
                errors.append(a)
                continue
            low, high = timeline.bounds(a.openid, a.t0, a.t1)
            if not low <= a.points <= high:
                (wrong_stale if a.stale else wrong_fresh).append(a)
        stale = sum(1 for a in self.answers if a.stale)
        return Verdicts(len(self.answers), stale, self.unreachable, wrong_fresh, wrong_stale, errors)
