"""`rewards intake …`: import the case system's history, re-apply events that failed (or were stranded)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from intake_adapter.history_import import DEFAULT_BATCH, ImportState, import_history, state_path
from intake_adapter.service import MAX_REPLAY_PASSES, IntakeService
from rewards.cli.common import open_container

SHOWN_ERRORS = 200  # the refused lines printed at the end; all of them stay in the state file

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


@intake_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSONL: one event a line")],
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="events per transaction")] = DEFAULT_BATCH,
    restart: Annotated[bool, typer.Option(help="ignore the saved progress and start from the first line")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Import a JSONL export of the case system's history through intake (same events, same rules); resumable.

    Progress is saved next to FILE after every batch: running the command again continues where it stopped, and an
    event already applied is never applied twice. Exit 1 if any line was refused (listed with its line number).
    """
    container = open_container()
    err = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=err, disable=not progress) as bar:
            task = bar.add_task("importing", total=file.stat().st_size, events=0)

            def advance(state: ImportState) -> None:
                bar.update(task, completed=state.bytes_done, events=state.applied + state.duplicate)

            service = IntakeService.of(container)
            state = import_history(service, file, batch_size=batch_size, restart=restart, on_batch=advance)
    finally:
        container.close()
    typer.echo(
        f"imported {state.lines_done:,} line(s): {state.applied:,} event(s) applied, "
        f"{state.duplicate:,} already applied, {len(state.errors):,} line(s) refused"
    )
    for error in state.errors[:SHOWN_ERRORS]:
        typer.echo(f"  {error}", err=True)
    if len(state.errors) > SHOWN_ERRORS:
        typer.echo(f"  … and {len(state.errors) - SHOWN_ERRORS:,} more in {state_path(file)}", err=True)
    if state.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `intake` command group to the `rewards` command."""
    app.add_typer(intake_app, name="intake")
