"""Properties of linked sign-ins (real SQL): random sequences of sign-ins from both apps, with and without unionid,
reports earning points, and administrators' merges of the pending links.

- every (app, openid) signs in as exactly one citizen, and the session's openid is that citizen's canonical one;
- no sign-in ever moves an openid away from a citizen with points or reports, nor changes any ledger total
  (no citizen with points is silently merged);
- every identity row carrying a unionid points to the same citizen;
- a sign-in with a unionid that did not record a pending link leaves the openid with the unionid's citizen;
- a merge keeps the sum of all points, and leaves the merged citizen's openids signing in as the one kept.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from rewards.bootstrap import Container
from rewards.cases import identity
from rewards.cases.identity import PENDING, CitizenIdentity, IdentityLink
from rewards.cases.linking import Outcome, Party, decide
from rewards.cases.models import Citizen
from rewards.scoring.citizen_links import established, merge_citizens, sign_in_linked
from rewards.scoring.ledger import LedgerEntry
from tests.integration.test_check_rebuild import award

PEOPLE = 2  # few people, many sign-ins each: conflicts between their citizens are likely
APPS = ("mp", "wxa")
_namespaces = itertools.count()
_cases = itertools.count()


@dataclass(frozen=True)
class Person:
    """One person's openid in each app and their unionid, in a namespace of its own per example."""

    ns: str
    index: int

    def openid(self, app: str) -> str:
        return f"{self.ns}{app}{self.index}"

    @property
    def unionid(self) -> str:
        return f"{self.ns}u{self.index}"


unionid_given = st.sampled_from([True, True, True, False])  # WeChat returns a unionid most of the time
sign_ins = st.tuples(st.just("sign"), st.sampled_from(APPS), st.integers(0, PEOPLE - 1), unionid_given)
earnings = st.tuples(st.just("earn"), st.sampled_from(APPS), st.integers(0, PEOPLE - 1), st.just(False))
merges = st.tuples(st.just("merge"), st.just("mp"), st.integers(0, 9), st.just(False))
steps = st.lists(st.one_of(sign_ins, sign_ins, earnings, earnings, merges), min_size=6, max_size=14)


def resolve(c: Container, app: str, openid: str) -> int | None:
    with c.read() as s:
        citizen = identity.owner_of(s, app, openid)
        return None if citizen is None else citizen.id


def snapshot(c: Container, people: list[Person]) -> dict[tuple[str, str], int | None]:
    return {(app, p.openid(app)): resolve(c, app, p.openid(app)) for p in people for app in APPS}


def ledger_totals(c: Container) -> dict[int, int]:
    with c.read() as s:
        rows = s.execute(select(LedgerEntry.citizen_id, func.sum(LedgerEntry.points)).group_by(LedgerEntry.citizen_id))
        return {cid: int(points) for cid, points in rows}


def established_ids(c: Container, ids: set[int]) -> set[int]:
    with c.read() as s:
        return {cid for cid in ids if established(s, cid)}


def check_invariants(c: Container, people: list[Person]) -> None:
    with c.read() as s:
        ns = people[0].ns
        rows = s.execute(
            select(
                CitizenIdentity.app, CitizenIdentity.openid, CitizenIdentity.citizen_id, CitizenIdentity.unionid
            ).where(CitizenIdentity.openid.like(f"{ns}%"))
        ).all()
        keys = [(app, openid) for app, openid, _, _ in rows]
        assert len(keys) == len(set(keys))  # one row per (app, openid)
        by_union: dict[str, set[int]] = {}
        for _, _, cid, unionid in rows:
            if unionid is not None:
                by_union.setdefault(unionid, set()).add(cid)
        assert all(len(cids) == 1 for cids in by_union.values()), by_union


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
# the paths that matter, always run: two established citizens meet (pending, then merged); an empty mini-program
# citizen is absorbed by the official account's citizen with points; and the other way round
@example(plan=[("earn", "mp", 0, False), ("sign", "mp", 0, True), ("earn", "wxa", 0, False), ("sign", "wxa", 0, True),
               ("merge", "mp", 0, False), ("sign", "wxa", 0, True), ("sign", "mp", 0, True)])  # fmt: skip
@example(plan=[("sign", "wxa", 1, True), ("earn", "mp", 1, False), ("sign", "mp", 1, True), ("sign", "wxa", 1, True)])
@example(plan=[("earn", "wxa", 0, False), ("sign", "wxa", 0, True), ("sign", "mp", 0, True), ("sign", "mp", 0, False)])
def test_sign_ins_never_silently_merge_and_every_openid_has_one_citizen(
    container: Container, plan: list[tuple[str, str, int, bool]]
) -> None:
    c = container
    ns = f"p{next(_namespaces)}x"
    people = [Person(ns, i) for i in range(PEOPLE)]
    for kind, app, who, with_union in plan:
        if kind == "earn":  # a report credited to the canonical identity of whoever this openid signs in as
            person = people[who]
            owner = resolve(c, app, person.openid(app))
            target = person.openid(app)
            if owner is not None:
                with c.read() as s:
                    target = s.get_one(Citizen, owner).openid
            award(c, f"{ns}-{next(_cases)}", target)
        elif kind == "sign":
            person = people[who]
            openid, unionid = person.openid(app), person.unionid if with_union else None
            before, totals_before = snapshot(c, people), ledger_totals(c)
            held = established_ids(c, {cid for cid in before.values() if cid is not None})
            with c.uow() as uow:
                signed = sign_in_linked(uow.session, app, openid, unionid, c.clock.now())
            event(f"sign-in: {signed.decision.outcome.value}")
            after = snapshot(c, people)
            assert ledger_totals(c) == totals_before  # a sign-in never touches points
            for key, cid in before.items():  # an openid of a citizen with points or reports stays with it
                if cid in held:
                    assert after[key] == cid, (key, before, after)
            now_owner = after[(app, openid)]
            assert now_owner == signed.citizen_id
            with c.read() as s:
                assert s.get_one(Citizen, signed.citizen_id).openid == signed.openid
                if unionid is not None and signed.decision.outcome is not Outcome.PENDING:
                    holder = identity.union_owner(s, unionid)
                    assert holder is not None and holder.id == now_owner
        else:  # an administrator merges one pending link of this example
            with c.read() as s:
                links = [
                    link
                    for link in s.scalars(select(IdentityLink).where(IdentityLink.state == PENDING)).all()
                    if link.openid.startswith(ns)
                ]
                if not links:
                    continue
                link = links[who % len(links)]
                source = s.get_one(Citizen, link.from_citizen_id).openid
                target = s.get_one(Citizen, link.into_citizen_id).openid
            event("merge")
            total_before = sum(ledger_totals(c).values())
            with c.uow() as uow:
                merge_citizens(uow, c.sink, source, target, actor="admin:test", reason="同一市民", now=c.clock.now())
            assert sum(ledger_totals(c).values()) == total_before
            with c.read() as s:
                moved = s.scalars(
                    select(CitizenIdentity.openid).where(CitizenIdentity.citizen_id == link.from_citizen_id)
                )
                assert moved.all() == []  # every openid of the merged citizen now signs in as the one kept
        check_invariants(c, people)


@given(
    owner=st.none() | st.builds(Party, st.integers(1, 4), st.booleans()),
    holder=st.none() | st.builds(Party, st.integers(1, 4), st.booleans()),
)
def test_the_linking_rule_never_joins_two_established_citizens(owner: Party | None, holder: Party | None) -> None:
    if owner is not None and holder is not None and owner.citizen_id == holder.citizen_id:
        holder = Party(owner.citizen_id, owner.established)  # one citizen has one state
    d = decide(owner, holder)
    if owner is not None and holder is not None and owner.citizen_id != holder.citizen_id:
        if owner.established and holder.established:
            assert d.outcome is Outcome.PENDING and d.citizen_id == owner.citizen_id and not d.record_unionid
        else:
            assert d.outcome is Outcome.ABSORB and d.pair is not None
            emptied, kept = d.pair
            assert d.citizen_id == kept
            assert emptied in (owner.citizen_id, holder.citizen_id) and emptied != kept
            emptied_party = owner if owner.citizen_id == emptied else holder
            assert not emptied_party.established  # only a citizen without points or reports is ever emptied
    elif owner is None and holder is None:
        assert d.outcome is Outcome.NEW and d.citizen_id is None
    else:
        expected = holder if holder is not None else owner
        assert expected is not None and d.citizen_id == expected.citizen_id and d.pair is None
