"""Exactly-once publication: a per-week record walks pending -> drafted -> submitted -> published (or failed).

Each id the channel returns is committed in its own transaction before the next call. A call that may have
been carried out without us hearing back (draft/add, freepublish/submit) is marked as requested first, so a
resumed run looks the draft or post up instead of creating a second one. Failed records are never retried
unless someone asks: `rewards publish --retry` runs it at once; the console and POST .../publication/retry only
ask (`request_retry`), and the scheduler's resume sweep runs it: a web worker never runs the state machine.
The closed week is read once per run and handed to every step that needs it.

Two kinds of publication per week share this machine, each its own record: `notice` (the closed week's list, the
公示) and `final` (the final list, 定榜, whose rows rewards.review passes in: `publish_final`). The scheduler's resume
sweep (WeeklyJobs.run_resume) resumes notices; rewards.review's finalize job resumes final ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards.clock import Clock
from rewards.config import Settings
from rewards.db import Database
from rewards.errors import Conflict, NotFound
from rewards.leaderboard.snapshot import Snapshot
from rewards.leaderboard.weeks import WeeklySnapshot, load_closed_week
from rewards.locks import Lease, Leases
from rewards.logs import get_logger
from rewards.program import Program
from rewards.publish.models import DRAFTED, FAILED, PENDING, PUBLISHED, SUBMITTED, Publication
from rewards.publish.notify import WinnerNotices
from rewards.publish.port import (
    AMBIGUOUS,
    FINAL,
    NOTICE,
    PUBLISH_FAILED,
    PUBLISHING,
    TERMINAL,
    TOKEN,
    Article,
    Publisher,
    PublishError,
    PublishStatus,
)
from rewards.publish.render import leaderboard_url, render_article

log = get_logger("publish")
T = TypeVar("T")
STATIC = Path(__file__).resolve().parent / "static"
SUBMITTED_ID_UNKNOWN = ""  # freepublish/submit was carried out but its publish_id never reached us


def asset(path: Path | None, default: str) -> tuple[str, bytes]:
    """Return (filename, bytes) of a configured image, or of the packaged placeholder."""
    chosen = path or STATIC / default
    try:
        return chosen.name, chosen.read_bytes()
    except OSError as exc:  # a misconfigured path is the operator's to fix: fail with the reason, do not retry
        raise PublishError(TERMINAL, None, f"cannot read image {chosen}: {exc.strerror}") from exc


def article_of(pub: Publication) -> Article:
    """The article exactly as it was rendered for this publication (never re-rendered once stored)."""
    assert pub.title is not None and pub.content is not None
    return Article(
        pub.week, pub.title, pub.author or "", pub.digest or "", pub.content, pub.content_source_url or "", pub.kind
    )


@dataclass(frozen=True)
class ClosedForPublication:
    """A closed week as publishing needs it: the snapshot row's id and the snapshot, read once per run."""

    snapshot_id: int
    snapshot: Snapshot


class PublishService:
    """Runs (and resumes) the publication of closed weeks through one publisher."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        program: Program,
        publisher: Publisher,
        leases: Leases,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.program = program
        self.publisher = publisher
        self.leases = leases
        self.sleep = sleep

    # ------------------------------------------------------------ records

    def get(self, week: str, kind: str = NOTICE) -> Publication | None:
        """The week's publication record of this kind (notice: the first announcement; final: 定榜), or None."""
        with self.db.read() as session:
            return session.scalars(
                select(Publication).where(Publication.week == week, Publication.kind == kind)
            ).one_or_none()

    def _closed(self, week: str) -> ClosedForPublication:
        with self.db.read() as session:
            closed = load_closed_week(session, week)
            sid = session.scalars(select(WeeklySnapshot.id).where(WeeklySnapshot.week == week)).one_or_none()
        if closed is None or sid is None:
            raise Conflict(
                f"week {week} is not closed yet: run `rewards close-week --week {week}` first", code="week_not_closed"
            )
        return ClosedForPublication(sid, closed.snapshot)

    def _ensure(self, closed: ClosedForPublication, kind: str = NOTICE) -> Publication:
        week = closed.snapshot.week
        pub = self.get(week, kind)
        if pub is not None:
            return pub
        now = self.clock.now()
        try:
            with self.db.uow() as uow:
                uow.session.add(
                    Publication(
                        week=week,
                        kind=kind,
                        snapshot_id=closed.snapshot_id,
                        channel=self.publisher.channel,
                        state=PENDING,
                        attempts=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # created concurrently: use theirs
        pub = self.get(week, kind)
        assert pub is not None
        return pub

    def _save(self, pub: Publication, **fields: Any) -> Publication:
        """Commit fields on the record in their own transaction (version-checked) and return the fresh record."""
        with self.db.uow() as uow:
            fresh = uow.session.get(Publication, pub.id)
            assert fresh is not None
            if fresh.version != pub.version:
                raise Conflict(f"the publication of {pub.week} was changed by another process", code="publish_raced")
            for name, value in fields.items():
                setattr(fresh, name, value)
            fresh.updated_at = self.clock.now()
        return fresh

    # ------------------------------------------------------------ entry points

    def lease(self, week: str) -> Lease:
        """The per-week publication lock."""
        key = f"{self.settings.leaderboard_key_prefix}:publish:{week}:lock"
        return self.leases.lease(key, self.settings.publish_lock_seconds)

    def publish(self, week: str, *, retry_failed: bool = False) -> Publication:
        """Publish a closed week once; resume an unfinished run; leave published and failed records alone."""
        return self._publish(week, NOTICE, None, None, retry_failed)

    def publish_final(
        self, week: str, final: Snapshot, remarks: Mapping[int, str], *, retry_failed: bool = False
    ) -> Publication:
        """Announce a week's final list (定榜) once, as the week's second publication (kind final), then send each
        final winner their notice once with their remark (the claim code). `final` is the final version's rows in
        the snapshot's shape (rewards.review builds it). Resumes like `publish`; a failed record is left alone
        unless retry_failed (or after `request_retry(week, FINAL)`)."""
        return self._publish(week, FINAL, final, remarks, retry_failed)

    def notify_final(self, week: str, final: Snapshot, remarks: Mapping[int, str]) -> int:
        """Send the final winners their notices (kind final) without a second article (no objection window);
        each winner at most once. Returns how many were sent in this run (0 without a winner template)."""
        template_id = self.settings.wechat_winner_template_id
        if not template_id:
            return 0
        lock = self.lease(week)
        if not lock.acquire():
            raise Conflict(f"week {week} is being published by another process", code="publish_in_progress")
        try:
            notices = WinnerNotices(self.db, self.clock, self.publisher, template_id, FINAL)
            return notices.send(final, leaderboard_url(self.settings, week), self._call, remarks)
        finally:
            lock.release()

    def _publish(
        self,
        week: str,
        kind: str,
        final: Snapshot | None,
        remarks: Mapping[int, str] | None,
        retry_failed: bool,
    ) -> Publication:
        lock = self.lease(week)
        if not lock.acquire():
            raise Conflict(f"week {week} is being published by another process", code="publish_in_progress")
        try:
            closed = self._closed(week)
            document = final if final is not None else closed.snapshot
            pub = self._ensure(closed, kind)
            if pub.state == FAILED and not retry_failed:
                return pub  # never retried blindly: an operator decides
            if pub.state != PUBLISHED:
                pub = self._attempt(pub, document, lock)
            template_id = self.settings.wechat_winner_template_id
            if pub.state == PUBLISHED and pub.channel == self.publisher.channel and template_id:
                notices = WinnerNotices(self.db, self.clock, self.publisher, template_id, kind)
                notices.send(document, leaderboard_url(self.settings, week), self._call, remarks)
            return pub
        finally:
            lock.release()

    def request_retry(self, week: str, kind: str = NOTICE) -> Publication:
        """Ask for a failed publication to be retried from where it stopped; the scheduler's sweep runs it.

        The record moves back to the state its stored ids allow (pending, drafted or submitted), so the resume
        sweep picks it up under the week's lock; a web request never runs the WeChat state machine itself.
        """
        lock = self.lease(week)
        if not lock.acquire():
            raise Conflict(f"week {week} is being published by another process", code="publish_in_progress")
        try:
            pub = self.get(week, kind)
            if pub is None:
                raise NotFound(f"week {week} has no publication")
            if pub.state != FAILED:
                raise Conflict(f"only a failed publication can be retried; {week} is {pub.state}", code="not_failed")
            return self._save(pub, state=self._resume_state(pub), error_code=None, error_message=None)
        finally:
            lock.release()

    def _attempt(self, pub: Publication, snapshot: Snapshot, lock: Lease) -> Publication:
        if pub.channel != self.publisher.channel:
            raise Conflict(
                f"the publication of {pub.week} was started on the {pub.channel} channel; "
                f"the configured publisher is {self.publisher.channel}",
                code="publish_channel_changed",
            )
        resume = self._resume_state(pub) if pub.state == FAILED else pub.state
        pub = self._save(pub, state=resume, attempts=pub.attempts + 1, error_code=None, error_message=None)
        try:
            return self._run(pub, snapshot, lock)
        except PublishError as exc:
            log.error("publication of %s (%s) failed: errcode %s: %s", pub.week, pub.kind, exc.code, exc.message)
            latest = self.get(pub.week, pub.kind) or pub
            return self._save(latest, state=FAILED, error_code=exc.code, error_message=exc.message)

    def retry(self, week: str) -> Publication:
        """Retry a failed publication from where it stopped (explicit operator action)."""
        pub = self.get(week)
        if pub is None:
            raise NotFound(f"week {week} has no publication")
        if pub.state != FAILED:
            raise Conflict(f"only a failed publication can be retried; {week} is {pub.state}", code="not_failed")
        return self.publish(week, retry_failed=True)

    @staticmethod
    def _resume_state(pub: Publication) -> str:
        """The state a failed record resumes from, derived from the ids it holds."""
        if pub.publish_id is not None:
            return SUBMITTED
        return DRAFTED if pub.draft_media_id is not None else PENDING

    # ------------------------------------------------------------ the state machine

    def _run(self, pub: Publication, snapshot: Snapshot, lock: Lease) -> Publication:
        p = self.publisher
        if pub.content_image_url is None:
            name, data = asset(self.settings.wechat_banner_image, "banner.png")
            pub = self._save(
                pub, content_image_url=self._call("media/uploadimg", lambda: p.upload_content_image(name, data))
            )
        if pub.thumb_media_id is None:
            name, data = asset(self.settings.wechat_cover_image, "cover.jpg")
            pub = self._save(pub, thumb_media_id=self._call("material/add_material", lambda: p.add_cover(name, data)))
        if pub.content is None:
            try:
                a = render_article(snapshot, self.settings, self.program, pub.content_image_url, pub.kind)
            except ValueError as exc:  # e.g. a leaderboard URL over WeChat's 1 KB: configuration, not WeChat
                raise PublishError(TERMINAL, None, f"render: {exc}") from exc
            pub = self._save(
                pub,
                title=a.title,
                author=a.author,
                digest=a.digest,
                content=a.content,
                content_source_url=a.content_source_url,
            )
        article = article_of(pub)
        if pub.state == PENDING:
            pub = self._draft(pub, article)
        if pub.state == DRAFTED:
            pub = self._submit(pub, article)
        if pub.state == SUBMITTED:
            pub = self._poll(pub, article, lock)
        return pub

    def _draft(self, pub: Publication, article: Article) -> Publication:
        p = self.publisher
        media_id = None
        if pub.draft_requested_at is not None:  # an earlier run may have created it without hearing back
            media_id = self._call("draft/batchget", lambda: p.find_draft(article))
        if media_id is None:
            pub = self._save(pub, draft_requested_at=self.clock.now())
            thumb = pub.thumb_media_id or ""
            media_id = self._call(
                "draft/add", lambda: p.add_draft(article, thumb), reconcile=lambda: p.find_draft(article)
            )
        return self._save(pub, draft_media_id=media_id, state=DRAFTED)

    def _submitted_already(self, media_id: str, article: Article) -> str | None:
        """After an unanswered submit: SUBMITTED_ID_UNKNOWN when it went through, None when it did not."""
        p = self.publisher
        if self._call("freepublish/batchget", lambda: p.find_published(article)) is not None:
            return SUBMITTED_ID_UNKNOWN
        # a submitted draft leaves the draft box; one still there was never submitted
        return None if self._call("draft/get", lambda: p.draft_exists(media_id)) else SUBMITTED_ID_UNKNOWN

    def _submit(self, pub: Publication, article: Article) -> Publication:
        p = self.publisher
        media_id = pub.draft_media_id
        assert media_id is not None
        publish_id = None
        if pub.submit_requested_at is not None:
            publish_id = self._submitted_already(media_id, article)
        if publish_id is None:
            pub = self._save(pub, submit_requested_at=self.clock.now())
            publish_id = self._call(
                "freepublish/submit",
                lambda: p.submit(media_id),
                reconcile=lambda: self._submitted_already(media_id, article),
            )
        return self._save(pub, publish_id=publish_id or None, state=SUBMITTED)

    def _poll(self, pub: Publication, article: Article, lock: Lease) -> Publication:
        p = self.publisher
        publish_id = pub.publish_id
        for poll in range(self.settings.publish_max_polls):
            if publish_id is not None:
                status = self._call("freepublish/get", lambda: p.publish_status(publish_id))
            else:  # submitted, id unknown: the post shows up among published articles once done
                found = self._call("freepublish/batchget", lambda: p.find_published(article))
                status = found or PublishStatus(PUBLISHING)
            if status.state == PUBLISHED:
                log.info("week %s published: %s", pub.week, status.url)
                return self._save(
                    pub,
                    state=PUBLISHED,
                    article_id=status.article_id,
                    article_url=status.url,
                    published_at=self.clock.now(),
                )
            if status.state == PUBLISH_FAILED:
                raise PublishError(TERMINAL, status.code, status.message)
            if poll + 1 < self.settings.publish_max_polls:
                if not lock.renew():
                    log.warning("lost the publish lock of %s while polling; version checks guard the record", pub.week)
                self.sleep(self.settings.publish_poll_seconds)
        log.info("week %s is still being published by WeChat; a later run resumes polling", pub.week)
        return pub

    def _call(self, what: str, fn: Callable[[], T], reconcile: Callable[[], T | None] | None = None) -> T:
        """One channel call with the retry policy: token -> refresh once; transient -> bounded backoff;
        ambiguous -> reconcile (if the call is not idempotent) before retrying; terminal -> raise."""
        attempt, refreshed = 0, False
        while True:
            try:
                return fn()
            except PublishError as exc:
                log.warning("%s (errcode %s, %s)", exc.message, exc.code, exc.kind)
                if exc.kind == TERMINAL:
                    raise
                if exc.kind == TOKEN:
                    if refreshed:
                        raise
                    refreshed = True
                    self.publisher.refresh_token()
                    continue
                attempt += 1
                give_up = attempt >= self.settings.publish_max_attempts
                if exc.kind == AMBIGUOUS and reconcile is not None:
                    self.sleep(self._delay(attempt))  # let a request still in flight land before looking for it
                    found = self._call(f"{what} (look-up)", reconcile)
                    if found is not None:
                        return found
                elif not give_up:
                    self.sleep(self._delay(attempt))
                if give_up:
                    raise PublishError(exc.kind, exc.code, f"{exc.message} (gave up after {attempt} attempts)") from exc

    def _delay(self, attempt: int) -> float:
        """Backoff before retry number `attempt` (1-based): doubling from publish_backoff_seconds, capped at 60 s."""
        return float(min(60.0, self.settings.publish_backoff_seconds * 2 ** (attempt - 1)))
