"""`rewards citizens links` and `rewards citizens merge`: an administrator's decision to join two citizens.

A sign-in never joins two citizens who both have points or reports (rewards.cases.linking): it records a pending
link. An administrator lists them and merges one citizen into the other, naming themself and the reason; the
merge runs in one transaction, is audited, keeps every ledger total (rewards.scoring.citizen_links) and the boards
follow (after commit, and through the projector's citizen changes).
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import func, select

from rewards.cases.identity import pending_links
from rewards.cases.models import Citizen
from rewards.cli.common import fail, open_container
from rewards.errors import DomainError
from rewards.scoring.citizen_links import merge_citizens
from rewards.scoring.ledger import LedgerEntry

citizens_app = typer.Typer(help="citizens: pending identity links, an administrator's merge", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the citizen commands to the `rewards` command."""
    app.add_typer(citizens_app, name="citizens")


@citizens_app.command("links")
def links_command() -> None:
    """List the pending links: two citizens with points or reports that one unionid says are one person."""
    container = open_container()
    try:
        with container.read() as session:
            rows = pending_links(session)
            ids = {i for link in rows for i in (link.from_citizen_id, link.into_citizen_id)}
            openids = {
                cid: openid
                for cid, openid in session.execute(select(Citizen.id, Citizen.openid).where(Citizen.id.in_(ids)))
            }
            sums = session.execute(
                select(LedgerEntry.citizen_id, func.sum(LedgerEntry.points))
                .where(LedgerEntry.citizen_id.in_(ids))
                .group_by(LedgerEntry.citizen_id)
            )
            totals = {cid: int(points) for cid, points in sums}
    finally:
        container.close()
    if not rows:
        typer.echo("no pending links")
        return
    for link in rows:
        a, b = link.from_citizen_id, link.into_citizen_id
        typer.echo(
            f"link {link.id} ({link.created_at:%Y-%m-%d %H:%M} UTC, {link.app}): "
            f"citizen {a} {openids.get(a, '?')} ({totals.get(a) or 0} points) and "
            f"citizen {b} {openids.get(b, '?')} ({totals.get(b) or 0} points)"
        )
    typer.echo(
        f"{len(rows)} pending; decide with: rewards citizens merge --from OPENID --into OPENID --reason … --by NAME"
    )


@citizens_app.command("merge")
def merge_command(
    from_openid: Annotated[str, typer.Option("--from", help="the citizen (canonical openid) to merge away")],
    into_openid: Annotated[str, typer.Option("--into", help="the citizen (canonical openid) that remains")],
    reason: Annotated[str, typer.Option(help="why: kept in the audit log and the merge record")],
    by: Annotated[str, typer.Option("--by", help="the administrator deciding (kept in the audit log)")],
) -> None:
    """Merge one citizen into another: reports and points move, every total is kept, audited, boards restated."""
    container = open_container()
    try:
        with container.uow() as uow:
            report = merge_citizens(
                uow,
                container.sink,
                from_openid,
                into_openid,
                actor=f"admin:{by.strip()}" if by.strip() else "",
                reason=reason,
                now=container.clock.now(),
            )
    except DomainError as exc:
        raise fail(exc.message) from None
    finally:
        container.close()
    typer.echo(
        f"merged citizen {report.from_citizen_id} into citizen {report.into_citizen_id} (merge {report.merge_id}): "
        f"{report.cases_moved} reports, {report.entries_moved} ledger entries, {report.points_moved} points moved"
    )
