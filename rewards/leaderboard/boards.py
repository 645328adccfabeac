"""Redis sorted-set boards (weekly, weekly eligible-only, all-time, per-district weekly): a derived index.

Writes go through the apply-once Lua script (scripts.APPLY): one ledger entry updates the citizen's summary and
every board it touches atomically, guarded by the entry id kept in that summary, so a retried or replayed
entry changes nothing and after-commit effects may run in any order (reached = max(created_at), sums commute).
Reads run as Lua scripts too, each checking the generation pointer so a rebuild's swap is never seen half-done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from rewards.config import Settings
from rewards.health import CircuitBreaker
from rewards.leaderboard import keys, scores, scripts
from rewards.scoring.model import EntryFacts

BATCH = 500  # scripts per pipeline round trip
Call = Callable[[int], tuple[Script, list[str], list[str | int]]]  # generation -> (script, keys, arguments)
RETRIES = 5  # generation swaps tolerated in one call (a rebuild swaps once)
CATCHING_UP = -2  # scripts.STANDING / STANDING_OF: the generation is being caught up after a rebuild's swap
UNPROFILED = 2  # scripts.APPLY: applied, and the summary holds no profile of the citizen yet (1: it does, 0: replay)


class GenerationMoved(RuntimeError):
    """The generation kept changing under a call (several rebuilds at once); retry later."""


class BreakerOpen(redis.ConnectionError):
    """Redis failed or hung just before: the call was not even tried (the breaker is open)."""


class BoardsCatchingUp(RuntimeError):
    """A rebuild swapped in new boards and is still catching them up with the ledger: a standing read now could miss
    entries committed while it streamed, so it is answered from the ledger instead (nothing is broken)."""


class BoardsLost(redis.ConnectionError):
    """The generation pointer vanished (Redis restarted empty or was flushed): the boards must be rebuilt."""


# failures that say Redis is down or hung (a script's own error, e.g. a score overflow, says nothing about Redis)
OUTAGES = (redis.ConnectionError, redis.TimeoutError)


@dataclass(frozen=True)
class Row:
    """One board line as Redis holds it."""

    citizen_id: int
    points: int
    tick: int
    prize_rank: int | None  # 1-based rank on the week's eligible board (None: not eligible / no prize board)
    eligible: bool


@dataclass(frozen=True)
class RawPage:
    """A slice of a board."""

    total: int
    updated_tick: int | None
    rows: list[Row]


@dataclass(frozen=True)
class Neighbour:
    """A citizen just above or below on a board."""

    citizen_id: int
    rank: int
    points: int
    name: str = ""  # masked display name read with the standing ("" when not read or not known in Redis)


@dataclass(frozen=True)
class Place:
    """A citizen's place on one board."""

    rank: int | None  # 1-based; None when not on the board
    points: int | None
    total: int  # citizens on the board
    above: list[Neighbour]
    below: list[Neighbour]


@dataclass(frozen=True)
class RawStanding:
    """Everything `standing` needs, read atomically."""

    weekly: Place
    all_time: Place
    prize_rank: int | None  # 1-based rank among eligible citizens this week
    eligible_total: int
    last_prize_points: int | None  # points of the last prize place; None when fewer are ranked
    week_points: int  # the week's total from the summary (may be <= 0)
    all_time_points: int
    eligible: bool | None  # None: no summary (no points ever)
    citizen_id: int = 0  # read by openid (standing_of): the citizen, whether banned and their masked name
    banned: bool | None = None
    name: str = ""


class Boards:
    """The leaderboards in Redis; a derived index of the ledger."""

    def __init__(self, client: redis.Redis, settings: Settings, breaker: CircuitBreaker | None = None) -> None:
        self.redis = client
        self.settings = settings
        self.breaker = breaker or CircuitBreaker("redis")
        self.prefix = settings.leaderboard_key_prefix
        keys.tag(self.prefix)  # refuse an unusable prefix at start-up
        self.scripts = scripts.register(client)
        self._gen: int | None = None
        # this process has seen the boards built: from then on an absent pointer means lost (flushed or restarted
        # empty), never "not built yet", even after `forget_generation` (a projector that lost the race to rebuild)
        self._seen_built = False
        self._keys_cache: dict[tuple[int, str], list[str]] = {}
        self._gen_base: tuple[int, str] | None = None  # (generation, its key base) of the last apply
        # citizen id -> profile of the committed citizen row, for the ids found; wired by the projector (which reads
        # SQL) so that an after-commit ban/unban or district change also writes what a standing shows at once
        self.profiles: Callable[[Sequence[int]], dict[int, scores.Profile]] | None = None

    # --- generation -------------------------------------------------------------------------------------
    def generation(self, *, fresh: bool = False) -> int:
        """Return the current generation (0 when the boards were never built)."""
        if fresh or self._gen is None:  # inside _run the breaker guards it; elsewhere (rebuild, check) it may raise
            value = self.redis.get(keys.gen_key(self.prefix))
            if value is None and (self._gen or self._seen_built):
                # boards this process saw built are gone: answer from the ledger until the projector rebuilds them,
                # rather than write into or read from an empty generation 0 as if it were the truth
                raise BoardsLost("the leaderboards are gone from Redis (restarted empty or flushed)")
            self._gen = int(value) if value is not None else 0
            self._seen_built = self._seen_built or self._gen > 0
        return self._gen

    def expect_built(self) -> None:
        """Another process is building the boards: until a generation is in place, an absent pointer means lost
        (standings from the ledger, awards left to the projector), not an empty generation 0 to read and write."""
        self._seen_built = True

    def forget_generation(self, *, seen_built: bool = True) -> None:
        """Forget the cached generation (after a rebuild put a new one in place, or the boards were lost).

        seen_built=False also forgets that the boards were ever built here (`check`: an absent pointer is then read
        as generation 0, a finding, not an error). Otherwise they stay lost until a generation is back in place.
        """
        self._gen = None
        self._seen_built = self._seen_built and seen_built

    def is_built(self) -> bool:
        """Return True when a rebuild has set the generation pointer (False on an empty or flushed Redis)."""
        return bool(self.redis.exists(keys.gen_key(self.prefix)))

    def _run(self, calls: Sequence[Call]) -> list[Any]:
        """Run script calls through the breaker: skipped at once while Redis is known to be down or hung."""
        if not self.breaker.allow():
            raise BreakerOpen(f"{self.breaker.name} is unavailable (circuit open)")
        try:
            results = [self._run_one(calls[0])] if len(calls) == 1 else self._run_calls(calls)
        except BoardsLost:
            self.breaker.success()  # Redis answered: it is the boards that are gone, the projector rebuilds them
            raise
        except OUTAGES:
            self.breaker.failure()
            raise
        self.breaker.success()
        return results

    def _run_one(self, call: Call) -> Any:
        """Run one script call: one EVALSHA, one round trip (the after-commit apply of one entry is this path),
        sent again on the generation the script answers when a rebuild swapped generations in between."""
        for _ in range(RETRIES):
            try:
                reply = self._evalsha(*call(self.generation()))
            except redis.ResponseError as exc:
                raise _translate(exc) from exc
            if not _moved(reply):
                return reply
            self.generation(fresh=True)
        raise GenerationMoved("the leaderboard generation kept changing; retry")

    def _run_calls(self, calls: Sequence[Call]) -> list[Any]:
        """Run script calls (each gives its script, keys and arguments for a generation), retrying those the
        generation moved under. EVALSHA straight away: one call is one round trip (no pipeline, no SCRIPT EXISTS);
        a NOSCRIPT reply (Redis restarted or flushed its scripts) loads the script and retries the call."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(RETRIES):
            gen = self.generation()
            retry: list[int] = []
            if len(todo) == 1:
                i = todo[0]
                try:
                    results[i] = self._evalsha(*calls[i](gen))
                except redis.ResponseError as exc:
                    raise _translate(exc) from exc
                if _moved(results[i]):
                    retry.append(i)
            else:
                for start in range(0, len(todo), BATCH):
                    chunk = todo[start : start + BATCH]
                    pipe = self.redis.pipeline(transaction=False)
                    for i in chunk:
                        script, ks, args = calls[i](gen)
                        pipe.evalsha(script.sha, len(ks), *ks, *args)
                    replies = pipe.execute(raise_on_error=False)
                    missing = {calls[i](gen)[0] for i, r in zip(chunk, replies, strict=True) if _noscript(r)}
                    for script in missing:
                        self.redis.script_load(script.script)
                    for i, res in zip(chunk, replies, strict=True):
                        if _moved(res) or _noscript(res):
                            retry.append(i)
                        else:
                            results[i] = res
            if not retry:
                errors = [r for r in results if isinstance(r, Exception)]
                if errors:
                    raise _translate(errors[0])
                return results
            if any(_moved(results[i]) or results[i] is None for i in retry):
                self.generation(fresh=True)
            todo = retry
        raise GenerationMoved("the leaderboard generation kept changing; retry")

    def _evalsha(self, script: Script, ks: Sequence[str], args: Sequence[str | int]) -> Any:
        """One EVALSHA; on NOSCRIPT load the script and send it again."""
        try:
            return self.redis.evalsha(script.sha, len(ks), *ks, *args)
        except NoScriptError:
            self.redis.script_load(script.script)
            return self.redis.evalsha(script.sha, len(ks), *ks, *args)

    def high_water(self) -> int:
        """The largest ledger entry id applied to the current generation (0: none)."""
        return int(self.redis.get(keys.high_water_key(self.prefix, self.generation(fresh=True))) or 0)

    def changes_mark(self) -> int:
        """The largest citizen-change id restated into the current generation (0: none)."""
        return int(self.redis.get(keys.changes_key(self.prefix, self.generation(fresh=True))) or 0)

    def raise_changes_mark(self, change_id: int) -> None:
        """Record that citizen changes up to this id are restated (never lowers the mark)."""
        key = keys.changes_key(self.prefix, self.generation())
        current = int(self.redis.get(key) or 0)
        if change_id > current:
            self.redis.set(key, change_id)

    def _summary_keys(self, gen: int, citizen_id: int) -> list[str]:
        p = self.prefix
        return [keys.gen_key(p), keys.summary_key(p, gen, citizen_id), keys.registry_key(p, gen)]

    # --- writes -----------------------------------------------------------------------------------------
    def apply(self, entries: Sequence[EntryFacts]) -> None:
        """Apply committed ledger entries once each; raise ScoreOverflow rather than rank a total wrongly."""
        calls = [self._apply_call(e) for e in entries]  # ticks are validated before anything is written
        results = self._run(calls)
        if self.profiles is None:
            return
        # a citizen's first award also writes what a standing shows of them
        if len(entries) == 1:
            unknown = [entries[0].citizen_id] if results[0] == UNPROFILED else []
        else:
            unknown = sorted({e.citizen_id for e, r in zip(entries, results, strict=True) if r == UNPROFILED})
        if unknown:
            self.restate_profiles(self.profiles(unknown))

    def _apply_call(self, e: EntryFacts) -> Call:
        # one call per ledger entry: what does not depend on the generation is built once, here
        tick = scores.tick_of(e.created_at)
        keys.weekly(e.week)  # refuse a malformed week before it reaches a key name (or the packed entry)
        summary = "c:" + keys.member(e.citizen_id)  # keys.summary_key after the generation's base
        entry = f" {e.entry_id} {e.points} {tick} {'1' if e.eligible else '0'} {e.week} {e.district or ''}"
        script = self.scripts.apply

        def call(gen: int) -> tuple[Script, list[str], list[str | int]]:
            return script, [self._base(gen) + summary], [str(gen) + entry]

        return call

    def _base(self, gen: int) -> str:
        """keys.base of a generation (kept for the last one asked: every apply needs it)."""
        cached = self._gen_base
        if cached is None or cached[0] != gen:
            cached = self._gen_base = (gen, keys.base(self.prefix, gen))
        return cached[1]

    def set_eligible(self, citizen_id: int, eligible: bool) -> None:
        """Move a citizen onto or off the eligible-only boards (after a ban/unban or verification change)."""
        if not self._restate_profile(citizen_id):
            self._restate(citizen_id, "1" if eligible else "0", None)

    def set_district(self, citizen_id: int, district: str | None) -> None:
        """Move a citizen's weekly totals to another district's boards (after their district changed)."""
        if not self._restate_profile(citizen_id):
            self._restate(citizen_id, "", district or "")

    def restate(self, citizen_id: int, eligible: bool, district: str | None) -> None:
        """Put a citizen on the boards their current eligibility and district call for (idempotent)."""
        self._restate(citizen_id, "1" if eligible else "0", district or "")

    def _restate_profile(self, citizen_id: int) -> bool:
        """Restate a citizen from their committed row (profile included) when a profile source is wired."""
        if self.profiles is None:
            return False
        found = self.profiles([citizen_id])
        if citizen_id not in found:
            return False
        self.restate_profiles(found)
        return True

    def restate_profiles(self, profiles: Mapping[int, scores.Profile]) -> None:
        """Write citizens' profiles (masked name, banned flag, openid) and put them on the boards their eligibility
        and district call for, in pipelined round trips (idempotent)."""
        self._run([self._restate_call(cid, p) for cid, p in profiles.items()])

    def _restate_call(self, citizen_id: int, p: scores.Profile) -> Call:
        tail: list[str | int] = [keys.member(citizen_id), "1" if p.eligible else "0", "1", p.district, "1", p.name]
        tail += ["1" if p.banned else "0", p.openid]

        def call(gen: int) -> tuple[Script, list[str], list[str | int]]:
            ks = [*self._summary_keys(gen, citizen_id), keys.openids_key(self.prefix, gen)]
            return self.scripts.restate, ks, [gen, keys.base(self.prefix, gen), *tail]

        return call

    def _restate(self, citizen_id: int, eligible: str, district: str | None) -> None:
        m = keys.member(citizen_id)
        tail: list[str | int] = [m, eligible, "0" if district is None else "1", district or "", "0"]

        def call(gen: int) -> tuple[Script, list[str], list[str | int]]:
            ks = [*self._summary_keys(gen, citizen_id), keys.openids_key(self.prefix, gen)]
            return self.scripts.restate, ks, [gen, keys.base(self.prefix, gen), *tail]

        self._run([call])

    # --- reads ------------------------------------------------------------------------------------------
    def page(self, name: str, offset: int, limit: int) -> RawPage:
        """Return rows [offset, offset + limit) of a board, with each row's eligibility and prize rank."""
        board = keys.parse_name(name)
        eligible_name = keys.weekly_eligible(board.week) if board.week else None

        def call(gen: int) -> tuple[Script, list[str], list[str | int]]:
            p = self.prefix
            ks = [keys.gen_key(p), keys.board_key(p, gen, name)]
            ks.append(keys.board_key(p, gen, eligible_name) if eligible_name else ks[1])
            ks.append(keys.registry_key(p, gen))
            args: list[str | int] = [
                gen,
                keys.base(p, gen),
                offset,
                offset + limit - 1,
                name,
                "1" if eligible_name else "0",
            ]
            return self.scripts.page, ks, args

        _, total, updated, flat = self._run([call])[0]
        rows = []
        for i in range(0, len(flat), 3):
            points, tick = scores.decode(float(flat[i + 1]))
            prize = int(flat[i + 2])
            rows.append(Row(keys.citizen_of(flat[i]), points, tick, prize + 1 if prize >= 0 else None, prize != -1))
        return RawPage(int(total), int(updated) if updated != "" else None, rows)

    def weekly_top(self, week: str, n: int) -> list[tuple[int, int]]:
        """Return the first n of a week's eligible-only board as (citizen_id, points), best first (snapshots)."""
        return [(r.citizen_id, r.points) for r in self.page(keys.weekly_eligible(week), 0, n).rows] if n > 0 else []

    def standing(self, citizen_id: int, week: str, places: int, neighbours: int = 1) -> RawStanding:
        """Return a citizen's weekly and all-time places, prize rank and the last prize place, atomically."""
        m = keys.member(citizen_id)

        def call(gen: int) -> tuple[Script, list[str], list[str | int]]:
            p = self.prefix
            ks = [
                keys.gen_key(p),
                keys.board_key(p, gen, keys.weekly(week)),
                keys.board_key(p, gen, keys.weekly_eligible(week)),
                keys.board_key(p, gen, keys.ALL_TIME),
                keys.summary_key(p, gen, citizen_id),
                keys.catchup_key(p),
            ]
            return self.scripts.standing, ks, [gen, m, places, neighbours, week]

        reply = self._run([call])[0]
        if reply[0] == CATCHING_UP:
            raise BoardsCatchingUp("the leaderboards are being caught up after a rebuild")
        _, weekly, eligible, all_time, summary = reply
        erank, ecard, last = eligible
        week_points, at_points, el = summary
        return RawStanding(
            weekly=_place(weekly),
            all_time=_place(all_time),
            prize_rank=int(erank) + 1 if int(erank) >= 0 else None,
            eligible_total=int(ecard),
            last_prize_points=scores.decode(float(last))[0] if last != "" else None,
            week_points=int(week_points or 0),
            all_time_points=int(at_points or 0),
            eligible=None if el == "" else el == "1",
        )

    def standing_of(self, openid: str, week: str, places: int, neighbours: int = 1) -> RawStanding | None:
        """Return a citizen's standing by openid with their profile and the neighbours' masked names, in one
        EVALSHA; None when Redis does not know the openid or has no profile for it yet (the caller asks SQL)."""
        if not self.breaker.allow():
            raise BreakerOpen(f"{self.breaker.name} is unavailable (circuit open)")
        try:
            for _ in range(RETRIES):
                gen = self.generation()
                ks = self._standing_keys(gen, week)
                reply = self._evalsha(self.scripts.standing_of, ks, [gen, ks[4][: -len(keys.ALL_TIME)], openid,
                                                                     places, neighbours, week])  # fmt: skip
                if reply[0] != -1:
                    break
                self.generation(fresh=True)
            else:
                raise GenerationMoved("the leaderboard generation kept changing; retry")
        except BoardsLost:
            self.breaker.success()
            raise
        except OUTAGES:
            self.breaker.failure()
            raise
        self.breaker.success()
        if reply[0] == CATCHING_UP:
            raise BoardsCatchingUp("the leaderboards are being caught up after a rebuild")
        if reply[0] == 0:
            return None
        _, m, profile, weekly, eligible, all_time = reply
        erank, ecard, last = eligible
        week_points, at_points, el, banned, name = profile
        return RawStanding(
            weekly=_place(weekly, named=True),
            all_time=_place(all_time, named=True),
            prize_rank=int(erank) + 1 if int(erank) >= 0 else None,
            eligible_total=int(ecard),
            last_prize_points=scores.decode(float(last))[0] if last != "" else None,
            week_points=int(week_points or 0),
            all_time_points=int(at_points or 0),
            eligible=el == "1",
            citizen_id=keys.citizen_of(m),
            banned=banned == "1",
            name=name,
        )

    def _standing_keys(self, gen: int, week: str) -> list[str]:
        """The declared keys of STANDING_OF (cached: the same few per generation and week)."""
        cached = self._keys_cache.get((gen, week))
        if cached is None:
            p = self.prefix
            cached = [
                keys.gen_key(p),
                keys.openids_key(p, gen),
                keys.board_key(p, gen, keys.weekly(week)),
                keys.board_key(p, gen, keys.weekly_eligible(week)),
                keys.board_key(p, gen, keys.ALL_TIME),
                keys.catchup_key(p),
            ]
            if len(self._keys_cache) > 64:
                self._keys_cache.clear()
            self._keys_cache[(gen, week)] = cached
        return cached


def _moved(reply: Any) -> bool:
    return isinstance(reply, list) and bool(reply) and reply[0] == -1


def _noscript(reply: Any) -> bool:
    return isinstance(reply, NoScriptError)


def _place(raw: list[Any], named: bool = False) -> Place:
    rank0, score, card, above, below = raw
    if int(rank0) < 0:
        return Place(None, None, int(card), [], [])
    r = int(rank0)

    step = 3 if named else 2  # named: member, score, masked name ('' when unknown)

    def side(flat: list[str], first_rank: int) -> list[Neighbour]:
        out = []
        for i in range(0, len(flat), step):
            points = scores.decode(float(flat[i + 1]))[0]
            name = flat[i + 2] if named else ""
            out.append(Neighbour(keys.citizen_of(flat[i]), first_rank + i // step, points, name))
        return out

    return Place(
        rank=r + 1,
        points=scores.decode(float(score))[0],
        total=int(card),
        above=side(above, r + 1 - len(above) // step),
        below=side(below, r + 2),
    )


def _translate(exc: Exception) -> Exception:
    """Turn the apply script's overflow refusal into ScoreOverflow; other errors pass through."""
    if isinstance(exc, redis.ResponseError) and "score overflow" in str(exc):
        return scores.ScoreOverflow(str(exc))
    return exc
