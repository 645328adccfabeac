"""What the review use cases return (pydantic, so the API can return them as they are).

Public shapes (`ListVersionOut`, `ReviewStatusOut`) carry masked names only. `ObjectionOut` carries the objector's
own reason and the decision's reason (for the objector and the console). `ClaimOut` carries the claim code: show
it to its owner (/me) and to staff only. `EvidenceOut` is for the console (staff) only.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ListRowOut(BaseModel):
    """One prize place of a list version (masked name)."""

    rank: int  # 获奖名次
    citizen_id: int
    display_name: str
    points: int
    tier: str
    prize: int


class ChangeOut(BaseModel):
    """One line of "异议处理结果": kind removed | moved | entered, ranks before/after, public reason."""

    kind: str
    display_name: str
    before: int | None
    after: int | None
    reason: str


class ListVersionOut(BaseModel):
    """A sealed version of a week's prize list (1 = the notice list); `changes` are relative to version n-1."""

    week: str
    number: int
    checksum: str
    created_at: datetime
    final: bool  # this version is the week's final list (定榜)
    latest: bool  # no later version exists
    rows: list[ListRowOut]
    changes: list[ChangeOut]


class ReviewStatusOut(BaseModel):
    """Where a week's review stands (the week page, /me and the console show this).

    phase: no_list (week not closed) | not_published (closed, 公示 not started) | open (objections accepted until
    `deadline`) | reviewing (deadline passed; open objections still to decide, or 定榜 not run yet) | final.
    """

    week: str
    phase: str
    phase_label: str  # Chinese
    window_days: int
    published_at: datetime | None  # the first publication's completion: the window starts here
    deadline: datetime | None  # objections accepted while now < deadline (None: not published yet)
    accepting_objections: bool
    open_objections: int
    current_version: int | None  # None: no list
    final_version: int | None
    finalized_at: datetime | None
    announced_at: datetime | None  # the 定榜 announcement completed
    claim_deadline: datetime | None


class ObjectionOut(BaseModel):
    """An objection with its status and outcome (the objector's /me and the console)."""

    id: int
    week: str
    rank: int  # as objected (in version `version_number`)
    version_number: int
    target_name: str  # masked
    reason: str
    channel: str
    status: str  # open | rejected | upheld | moot
    status_label: str  # Chinese
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str | None  # the reviewer's reason (shown to the objector)
    action: str | None  # void_case | disqualify when upheld
    produced_version: int | None  # the list version an upheld objection produced


class LedgerLineOut(BaseModel):
    """A ledger line of the objected entry in the week."""

    case_id: str
    rule: str
    points: int
    reason: str
    created_at: datetime


class DuplicateHintOut(BaseModel):
    """A nearby case of the same category (possible duplicate of an entry's case)."""

    case_id: str
    distance_m: float
    earlier: bool
    status: str


class EvidenceCaseOut(BaseModel):
    """One case behind the objected entry's points, with photos and duplicate hints."""

    case_id: str
    category: str
    status: str
    verdict: str | None
    description: str
    address: str | None
    photos: list[str]
    reported_at: datetime
    duplicate_of: str | None
    duplicates: list[DuplicateHintOut]


class EvidenceOut(BaseModel):
    """What the console shows next to an open objection (staff only: the entry's real identity is not here either,
    the citizen id and masked name are)."""

    objection: ObjectionOut
    target_citizen_id: int
    target_points: int
    ledger: list[LedgerLineOut]
    cases: list[EvidenceCaseOut]
    other_objections: list[ObjectionOut]  # on the same entry


class DecisionOut(BaseModel):
    """A decision as recorded, and the version it produced (upheld only)."""

    objection_id: int
    outcome: str  # rejected | upheld
    action: str | None
    case_id: str | None
    reason: str
    actor: str
    decided_at: datetime
    version: ListVersionOut | None
    mooted: list[int]  # other open objections on the same entry closed by this decision


class ClaimOut(BaseModel):
    """A final winner's prize claim (code included: owner and staff only)."""

    week: str
    citizen_id: int
    display_name: str  # masked
    code: str  # canonical form, e.g. "K7QM-3XPA-9HTD"
    rank: int
    tier: str
    prize: int
    status: str  # pending | redeemed | expired | revoked
    status_label: str
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_by: str | None


class FinalizeOut(BaseModel):
    """What one finalize run did for a week (all steps resume after a crash)."""

    week: str
    finalized: bool  # the final record exists
    version: int | None
    claims: int  # claim codes that exist for the week
    announced: bool  # the 定榜 publication completed (or none is needed: window 0)
    publication_state: str | None  # the 定榜 publication's state (None: none needed or not started)
    notified: bool
    waiting_for: str | None  # why nothing (more) happened: not_published | window_open | open_objections | None


class PayoutFile(BaseModel):
    """A payout export: file name, media type and the bytes."""

    filename: str
    media_type: str
    content: bytes
    rows: int
