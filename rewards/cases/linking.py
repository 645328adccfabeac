"""Linking a WeChat sign-in to a citizen (pure): who the openid belongs to, who the unionid belongs to, and what to do.

One person has a different openid in each WeChat app (the official account "mp", the mini program "wxa"); WeChat
returns the same `unionid` from both when the apps share an open-platform account. A sign-in therefore knows up to
two citizens: the *owner* of the (app, openid) and the *union owner*, the citizen the unionid is already linked to.
The rule: link automatically whenever at most one of them is established (has points or reports); never merge two
established citizens: sign in as the owner and record a pending link for an administrator to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

APPS = ("mp", "wxa")  # the official account's web OAuth, the mini program's code2Session


class Outcome(Enum):
    """What a sign-in does."""

    NEW = "new"  # nobody knows this openid or unionid: a new citizen
    KNOWN = "known"  # the openid's citizen (who may also hold the unionid)
    LINK = "link"  # a new openid joins the unionid's citizen
    ABSORB = "absorb"  # two citizens, at most one established: the other's openids move to it (nothing else to move)
    PENDING = "pending"  # two established citizens: sign in as the owner, an administrator decides about merging


@dataclass(frozen=True)
class Party:
    """A citizen a sign-in finds, and whether it is established (has ledger entries or reports)."""

    citizen_id: int
    established: bool


@dataclass(frozen=True)
class Decision:
    """The outcome, the citizen to sign in as (None: a new one), and the pair (from, into) it concerns, if any."""

    outcome: Outcome
    citizen_id: int | None
    pair: tuple[int, int] | None = None  # ABSORB: (emptied, kept); PENDING: (owner, union owner)
    record_unionid: bool = True  # False: the unionid stays off this openid until an administrator merges


def decide(owner: Party | None, union_owner: Party | None) -> Decision:
    """Decide a sign-in from the openid's citizen and the unionid's citizen (None: nobody)."""
    if owner is None and union_owner is None:
        return Decision(Outcome.NEW, None)
    if union_owner is None:
        assert owner is not None
        return Decision(Outcome.KNOWN, owner.citizen_id)
    if owner is None:
        return Decision(Outcome.LINK, union_owner.citizen_id)
    if owner.citizen_id == union_owner.citizen_id:
        return Decision(Outcome.KNOWN, owner.citizen_id)
    if owner.established and union_owner.established:
        return Decision(Outcome.PENDING, owner.citizen_id, (owner.citizen_id, union_owner.citizen_id), False)
    if owner.established:  # the unionid's citizen is an empty shell: it joins the established owner
        return Decision(Outcome.ABSORB, owner.citizen_id, (union_owner.citizen_id, owner.citizen_id))
    return Decision(Outcome.ABSORB, union_owner.citizen_id, (owner.citizen_id, union_owner.citizen_id))
