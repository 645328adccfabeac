"""`rewards close-week`, `rewards publish`, `rewards finalize`, `rewards scheduler`: the weekly close, its 公示
announcement and the 定榜 (final list) after the objection window."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from rewards.bootstrap import Container
from rewards.cli.common import fail, open_container
from rewards.clock import IsoWeek
from rewards.errors import DomainError
from rewards.logs import configure
from rewards.publish.models import FAILED, PUBLISHED, Publication
from rewards.publish.scheduler import run_scheduler

WeekOption = Annotated[str | None, typer.Option("--week", help="ISO week, e.g. 2026-W48 (default: last week)")]
EXIT_FAILED, EXIT_UNFINISHED = 1, 3


@contextmanager
def _container() -> Iterator[Container]:
    """The services for one command, released when it ends (connections, the embedded Redis)."""
    container = open_container()
    configure(fmt=container.settings.log_format)  # after the embedded migration (Alembic chatter is not the point)
    try:
        yield container
    finally:
        container.close()


def _week(container: Container, text: str | None) -> IsoWeek:
    if text is None:
        return container.closer.default_week()
    try:
        return IsoWeek.from_text(text)
    except DomainError as exc:
        raise fail(exc.message) from exc


def describe(pub: Publication) -> str:
    """The publication record as an operator reads it."""
    error = f"{pub.error_code if pub.error_code is not None else '-'} {pub.error_message or ''}".strip()
    lines = [
        ("week", pub.week),
        ("channel", pub.channel),
        ("state", pub.state),
        ("attempts", str(pub.attempts)),
        ("cover", pub.thumb_media_id),
        ("draft", pub.draft_media_id),
        ("publish_id", pub.publish_id),
        ("article", pub.article_id),
        ("url", pub.article_url),
        ("error", error if pub.error_message or pub.error_code is not None else None),
        ("updated_at", pub.updated_at.isoformat()),
        ("published_at", pub.published_at.isoformat() if pub.published_at else None),
    ]
    return "\n".join(f"{name + ':':<13} {value or '-'}" for name, value in lines)


def register(app: typer.Typer) -> None:
    """Add the weekly close and publishing commands to the `rewards` command."""

    @app.command("close-week")
    def close_week_command(week: WeekOption = None) -> None:
        """Close a finished week: rank the ledger, store the immutable snapshot (a second close shows it)."""
        with _container() as container:
            try:
                closed = container.closer.close(_week(container, week))
            except DomainError as exc:
                raise fail(exc.message) from exc
        snap = closed.snapshot
        typer.echo(f"{'closed' if closed.created else 'already closed'} {snap.week}: "
                   f"{len(snap.rows)} winners of {snap.participants} eligible participants")  # fmt: skip
        typer.echo(f"checksum {closed.checksum}; Redis weekly board: {closed.board_status}")
        for diff in closed.board_diff:
            typer.echo(f"  rank {diff['rank']}: ledger {diff['ledger']} board {diff['board']}")
        for row in snap.rows[:10]:
            typer.echo(f"  {row.rank:>3} {row.display_name} {row.points} {row.tier} {row.prize}")

    @app.command("publish")
    def publish_command(
        week: WeekOption = None,
        status: Annotated[bool, typer.Option("--status", help="show the publication record and exit")] = False,
        retry: Annotated[
            bool, typer.Option("--retry", help="retry a failed publication from where it stopped")
        ] = False,
    ) -> None:
        """Publish a closed week on the official account (or the outbox) exactly once; resume if interrupted."""
        with _container() as container:
            label = str(_week(container, week))
            service = container.publishing
            if status:
                found = service.get(label)
                if found is None:
                    raise fail(f"week {label} has no publication yet")
                typer.echo(describe(found))
                return
            try:
                pub = service.retry(label) if retry else service.publish(label)
            except DomainError as exc:
                raise fail(exc.message) from exc
        typer.echo(describe(pub))
        if pub.state == FAILED:
            hint = "" if retry else "; after fixing the cause run `rewards publish --week " + label + " --retry`"
            typer.echo(f"error: publication of {label} failed: {pub.error_code} {pub.error_message}{hint}", err=True)
            raise typer.Exit(EXIT_FAILED)
        if pub.state != PUBLISHED:
            typer.echo(f"publication of {label} is {pub.state}; running the command again resumes it", err=True)
            raise typer.Exit(EXIT_UNFINISHED)

    @app.command("finalize")
    def finalize_command(week: WeekOption = None) -> None:
        """Make a week's list final (定榜) once its objection window has ended and no objection is open, announce it
        once and give the winners their claim codes; running it again resumes an interrupted run (the scheduler does
        this every few minutes on its own)."""
        with _container() as container:
            label = str(_week(container, week))
            try:
                out = container.review.finalize(label)
            except DomainError as exc:
                raise fail(exc.message) from exc
        typer.echo(f"week:         {out.week}")
        typer.echo(f"final:        {'yes, version ' + str(out.version) if out.finalized else 'no'}")
        typer.echo(f"claim codes:  {out.claims}")
        typer.echo(f"announced:    {'yes' if out.announced else 'no'} ({out.publication_state or '-'})")
        typer.echo(f"notified:     {'yes' if out.notified else 'no'}")
        if out.waiting_for is not None:
            reasons = {
                "not_published": "the 公示 list is not published yet (`rewards publish`)",
                "window_open": "the objection window is still open",
                "open_objections": "objections are still open: decide them in the console (/console/review)",
            }
            why = reasons.get(out.waiting_for, out.waiting_for)
            typer.echo(f"error: week {out.week} is not final: {why}", err=True)
            raise typer.Exit(EXIT_UNFINISHED)
        if out.publication_state == FAILED:
            typer.echo(f"error: the 定榜 publication of {out.week} failed; retry it on /console/weeks", err=True)
            raise typer.Exit(EXIT_FAILED)
        if not (out.announced and out.notified):
            typer.echo(f"finalizing {out.week} is unfinished; running the command again resumes it", err=True)
            raise typer.Exit(EXIT_UNFINISHED)

    @app.command("scheduler")
    def scheduler_command() -> None:
        """Run the weekly scheduler (exactly one per deployment; never inside web workers)."""
        with _container() as container:
            container.prepare()
            container.start_projector()  # the scheduler keeps the boards in line with the ledger too
            run_scheduler(container.jobs)
