"""The console's publication API: a week's record, and asking for a failed publication to be retried."""

from __future__ import annotations

from fastapi import APIRouter

from rewards.cases.service import audit
from rewards.deps import ClockDep, Db, PublisherRole, Publishing, WeekPath
from rewards.errors import NotFound
from rewards.publish.schemas import PublicationOut

router = APIRouter(tags=["publish"])


@router.get("/api/v1/weeks/{week}/publication", response_model=PublicationOut)
def get_publication(week: WeekPath, publishing: Publishing, who: PublisherRole) -> PublicationOut:
    """The week's publication record: state, ids WeChat returned, the last error."""
    pub = publishing.get(str(week))
    if pub is None:
        raise NotFound(f"week {week} has no publication yet")
    return PublicationOut.of(pub)


@router.post("/api/v1/weeks/{week}/publication/retry", response_model=PublicationOut, status_code=202)
def retry_publication(
    week: WeekPath, publishing: Publishing, db: Db, clock: ClockDep, who: PublisherRole
) -> PublicationOut:
    """Ask for a failed publication to be retried from where it stopped (409 unless it failed).

    The answer is 202: the scheduler's resume sweep runs the retry (a web worker never waits on WeChat);
    poll GET .../publication for its progress.
    """
    pub = publishing.request_retry(str(week))
    with db.uow() as uow:
        audit(uow.session, clock.now(), who.name, "publish:retry-requested", str(week), pub.state)
    return PublicationOut.of(pub)
