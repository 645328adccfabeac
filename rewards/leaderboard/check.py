"""Compare every board and citizen summary in Redis with the SQL ledger; list each difference.

Pass 1 streams the citizens with their ledger (bounded memory), folds each citizen exactly as a rebuild would and
compares, per chunk in one pipeline, their summary (applied entries, per-scope points and reached tick,
district, eligibility), the citizen data a standing reads (openid -> citizen, masked name, banned flag) and their
score on every board they belong to; then whether Redis maps openids that belong to no citizen.
Pass 2 compares each board's size with the number of citizens the ledger puts on it, and with the number of
those found there in pass 1; when Redis holds more members than that, it scans the board and reports those the
ledger does not place there. Every expected member present with its exact score, and nobody else, means equal
sets and scores, hence equal ranks. Run it when awards are quiet: an entry applied between the two reads shows as
drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import tzinfo

import redis

from rewards.db import Database
from rewards.leaderboard import keys, scores
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.rebuild import CHUNK, CitizenLedger, stream_ledger

SCAN_BATCH = 1000


@dataclass
class CheckReport:
    """The differences found (empty: the boards equal the ledger)."""

    generation: int
    citizens: int = 0
    boards: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Return True when Redis equals the ledger."""
        return not self.differences


def check(db: Database, boards: Boards) -> CheckReport:
    """Compare Redis with the ledger; return every difference."""
    client, prefix, tz = boards.redis, boards.prefix, boards.settings.tz
    boards.forget_generation(seen_built=False)  # a flushed Redis is a finding here, not an error: compare with it
    gen = boards.generation(fresh=True)
    report = CheckReport(gen)
    expected_sizes: dict[str, int] = {}  # board -> citizens the ledger places there
    present: dict[str, int] = {}  # board -> how many of those Redis holds
    mapped_ok = [0]  # openids Redis maps to their citizen
    with db.read() as session:
        for chunk in _chunks(stream_ledger(session)):
            report.citizens += len(chunk)
            _compare_chunk(client, prefix, gen, tz, chunk, (expected_sizes, present, mapped_ok), report.differences)
    mapped = int(client.hlen(keys.openids_key(prefix, gen)))
    if mapped > mapped_ok[0]:
        report.differences.append(
            f"citizen data: {mapped} openids mapped in Redis, {mapped_ok[0]} of them belong to a citizen"
        )
    registered: list[str] = client.hkeys(keys.registry_key(prefix, gen))  # type: ignore[assignment]  # decoded
    names = set(expected_sizes) | set(registered)
    report.boards = len(names)
    ordered = sorted(names)
    pipe = client.pipeline(transaction=False)
    for name in ordered:
        pipe.zcard(keys.board_key(prefix, gen, name))
    for name, size in zip(ordered, pipe.execute(), strict=True):
        want = expected_sizes.get(name, 0)
        if size != want:
            report.differences.append(f"board {name}: {size} citizens in Redis, {want} in the ledger")
        if size > present.get(name, 0):  # someone the ledger does not place there
            _report_extras(db, client, prefix, gen, tz, name, report.differences)
    return report


def _chunks(citizens: Iterator[CitizenLedger]) -> Iterator[list[CitizenLedger]]:
    chunk: list[CitizenLedger] = []
    for c in citizens:
        chunk.append(c)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _describe(points: int, tick: int, tz: tzinfo) -> str:
    return f"{points} points reached {scores.instant_of(tick).astimezone(tz).isoformat()}"


def _compare_chunk(
    client: redis.Redis,
    prefix: str,
    gen: int,
    tz: tzinfo,
    chunk: list[CitizenLedger],
    sizes: tuple[dict[str, int], dict[str, int], list[int]],
    out: list[str],
) -> None:
    expected_sizes, present, _ = sizes
    folded = [(c.citizen_id, scores.fold(c.lines, c.district, c.eligible)) for c in chunk]
    pipe = client.pipeline(transaction=False)
    plan: list[tuple[int, scores.Summary, dict[str, int]]] = []
    openids_key = keys.openids_key(prefix, gen)
    for c, (cid, summary) in zip(chunk, folded, strict=True):
        places = scores.placements(summary)
        plan.append((cid, summary, places))
        pipe.hgetall(keys.summary_key(prefix, gen, cid))
        pipe.hget(openids_key, c.profile.openid if c.profile else "")
        for name in places:
            pipe.zscore(keys.board_key(prefix, gen, name), keys.member(cid))
            expected_sizes[name] = expected_sizes.get(name, 0) + 1
    results = iter(pipe.execute())
    for c, (cid, want, places) in zip(chunk, plan, strict=True):
        fields = next(results)
        mapped = next(results)
        out.extend(_summary_differences(cid, want, scores.summary_from_fields(fields), tz))
        if c.profile is not None and (c.lines or mapped is not None or "b" in fields):
            # a citizen without points whom the projector has not restated yet is not drift: their standing
            # asks SQL; anyone with points, and any data Redis holds, must equal the citizens table
            out.extend(_profile_differences(cid, c.profile, fields, mapped))
            if mapped is not None:
                sizes[2][0] += 1
        for name, score in places.items():
            got = next(results)
            if got is not None:
                present[name] = present.get(name, 0) + 1
            if got is None:
                out.append(f"board {name}: citizen {cid} is missing (ledger: {_describe(*scores.decode(score), tz)})")
            elif int(got) != score:
                out.append(
                    f"board {name}: citizen {cid} has {_describe(*scores.decode(got), tz)} in Redis, "
                    f"the ledger gives {_describe(*scores.decode(score), tz)}"
                )


def _summary_differences(cid: int, want: scores.Summary, got: scores.Summary, tz: tzinfo) -> list[str]:
    out: list[str] = []
    who = f"summary of citizen {cid}"
    missing, extra = sorted(want.entry_ids - got.entry_ids), sorted(got.entry_ids - want.entry_ids)
    if missing:
        out.append(f"{who}: entries not applied in Redis: {_ids(missing)}")
    if extra:
        out.append(f"{who}: entries applied in Redis but not in the ledger: {_ids(extra)}")
    for scope in sorted(set(want.points) | set(got.points)):
        w = (want.points.get(scope), want.reached.get(scope))
        g = (got.points.get(scope), got.reached.get(scope))
        if w != g:
            out.append(f"{who}, scope {scope}: Redis {_pair(g, tz)}, ledger {_pair(w, tz)}")
    if got.entry_ids and (want.district, want.eligible) != (got.district, got.eligible):
        out.append(
            f"{who}: Redis district {got.district!r} eligible {got.eligible}, "
            f"ledger district {want.district!r} eligible {want.eligible}"
        )
    return out


def _profile_differences(cid: int, want: scores.Profile, fields: dict[str, str], mapped: str | None) -> list[str]:
    """What Redis keeps of a citizen for the standing (openid, masked name, banned, district, eligible) vs SQL."""
    who = f"citizen data of citizen {cid}"
    out: list[str] = []
    if mapped != keys.member(cid):
        out.append(f"{who}: openid maps to {mapped!r} in Redis, not to this citizen")
    got = scores.profile_from_fields(want.openid, fields)
    if got is None:
        out.append(f"{who}: missing in Redis")
    elif got != want:
        out.append(
            f"{who}: Redis name {got.name!r} district {got.district!r} eligible {got.eligible} banned {got.banned}, "
            f"citizens table name {want.name!r} district {want.district!r} eligible {want.eligible} "
            f"banned {want.banned}"
        )
    return out


def _pair(value: tuple[int | None, int | None], tz: tzinfo) -> str:
    points, tick = value
    if points is None or tick is None:
        return "nothing"
    return _describe(points, tick, tz)


def _ids(ids: list[int], shown: int = 10) -> str:
    text = ", ".join(str(i) for i in ids[:shown])
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def _report_extras(
    db: Database, client: redis.Redis, prefix: str, gen: int, tz: tzinfo, name: str, out: list[str]
) -> None:
    """List the members of a board that the ledger does not place on it (bounded memory: batch by batch)."""
    batch: list[tuple[str, float]] = []

    def flush() -> None:
        ids = [keys.citizen_of(m) for m, _ in batch]
        with db.read() as session:
            expected = {c.citizen_id: c for c in stream_ledger(session, ids)}
        for m, score in batch:
            cid = keys.citizen_of(m)
            c = expected.get(cid)
            placed = c is not None and name in scores.placements(scores.fold(c.lines, c.district, c.eligible))
            if not placed:
                points, tick = scores.decode(score)
                out.append(f"board {name}: citizen {cid} should not be there (Redis: {_describe(points, tick, tz)})")

    for member, score in client.zscan_iter(keys.board_key(prefix, gen, name), count=SCAN_BATCH):
        batch.append((member, score))
        if len(batch) >= SCAN_BATCH:
            flush()
            batch = []
    if batch:
        flush()
