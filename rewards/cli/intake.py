"""`rewards intake …`: re-apply events that failed (or were stranded) in the inbox."""

from __future__ import annotations

from typing import Annotated

import typer

from intake_adapter.service import MAX_REPLAY_PASSES, IntakeService
from rewards.cli.common import open_container

intake_app = typer.Typer(help="the intake inbox of events from the city's case system", no_args_is_help=True)


@intake_app.command("replay")
def replay(
    max_passes: Annotated[int, typer.Option(min=1, help="passes over the inbox before giving up")] = MAX_REPLAY_PASSES,
) -> None:
    """Re-apply failed events in occurred_at order until no pass makes progress; exit 1 if some still fail."""
    container = open_container()
    try:
        summary = IntakeService.of(container).replay(max_passes=max_passes)
    finally:
        container.close()
    typer.echo(
        f"replayed {summary.attempted} event(s) in {summary.passes} pass(es): "
        f"{len(summary.applied)} applied, {len(summary.still_failing)} still failing"
    )
    for res in summary.applied:
        typer.echo(f"  applied  {res.event_id}  {res.type}  case {res.case_id}  ({res.effect})")
    for row in summary.still_failing:
        typer.echo(f"  failing  {row.event_id}  {row.type or '?'}  case {row.case_id or '?'}  {row.error}", err=True)
    if summary.still_failing:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `intake` command group to the `rewards` command."""
    app.add_typer(intake_app, name="intake")
