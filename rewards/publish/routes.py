"""HTTP routes of the publish domain: the public preview page and the console's publication API."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from rewards.auth import require
from rewards.bootstrap import Container
from rewards.clock import IsoWeek
from rewards.deps import container
from rewards.errors import Invalid, NotFound
from rewards.leaderboard.snapshot import load_closed_week
from rewards.publish.models import PUBLISHED, UNFINISHED
from rewards.publish.outbox import data_uri
from rewards.publish.port import PublishError
from rewards.publish.render import render_article, render_missing, render_page
from rewards.publish.schemas import PublicationOut
from rewards.publish.service import PublishService, article_of, asset
from rewards.web.ratelimit import public_rate_limit

router = APIRouter()
STATUS_TEXT = {PUBLISHED: "已发布"} | dict.fromkeys(UNFINISHED, "发布中")


def parse_week(week: str) -> str:
    """Validate a week path parameter (422 with the reason otherwise)."""
    try:
        return str(IsoWeek.parse(week))
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_week") from exc


@router.get("/weeks/{week}", response_class=HTMLResponse, tags=["publish"], dependencies=[Depends(public_rate_limit)])
def week_page(week: str, c: Container = Depends(container)) -> HTMLResponse:
    """The week's announcement as published (or, before that, a preview of it); masked names only."""
    label = parse_week(week)
    with c.read() as session:
        closed = load_closed_week(session, label)
    if closed is None:
        return HTMLResponse(render_missing(label, "本周尚未结算，获奖名单将在下周一公布。"), status_code=404)
    pub = PublishService(c).get(label)
    if pub is not None and pub.content is not None:
        article = article_of(pub)  # exactly what was sent
        status = STATUS_TEXT.get(pub.state, "待发布")
    else:
        try:
            image: str | None = data_uri(asset(c.settings.wechat_banner_image, "banner.png")[1])
        except PublishError:
            image = None  # a misconfigured banner must not take the page down
        article = render_article(closed.snapshot, c.settings, image)
        status = "预览（尚未发布）"
    url = pub.article_url if pub is not None and pub.state == PUBLISHED else None
    return HTMLResponse(render_page(article, status, url if url and url.startswith("https://") else None))


@router.get("/api/v1/weeks/{week}/publication", response_model=PublicationOut, tags=["publish"])
def get_publication(
    week: str, c: Container = Depends(container), _: object = Depends(require("publisher"))
) -> PublicationOut:
    """The week's publication record: state, ids WeChat returned, the last error."""
    label = parse_week(week)
    pub = PublishService(c).get(label)
    if pub is None:
        raise NotFound(f"week {label} has no publication yet")
    return PublicationOut.of(pub)


@router.post("/api/v1/weeks/{week}/publication/retry", response_model=PublicationOut, tags=["publish"])
def retry_publication(
    week: str, c: Container = Depends(container), _: object = Depends(require("publisher"))
) -> PublicationOut:
    """Retry a failed publication from where it stopped (409 unless it failed)."""
    return PublicationOut.of(PublishService(c).retry(parse_week(week)))
