"""`rewards check` and `rewards rebuild`: compare the boards with the ledger, rebuild them from it."""

from __future__ import annotations

from typing import Annotated

import redis
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rewards.cli.common import fail, open_container
from rewards.leaderboard.check import check
from rewards.leaderboard.rebuild import RebuildRunning, rebuild


def register(app: typer.Typer) -> None:
    """Add the leaderboard commands to the `rewards` command."""
    app.command("check")(check_command)
    app.command("rebuild")(rebuild_command)


def check_command(
    max_listed: Annotated[int, typer.Option(min=0, help="list at most this many differences (0: all)")] = 0,
) -> None:
    """Compare every board with the ledger; exit 1 listing each difference, 0 when they agree."""
    container = open_container()
    try:
        report = check(container.db, container.boards)
    except redis.RedisError as exc:
        raise fail(f"Redis is unavailable: {exc}") from exc
    finally:
        container.close()
    shown = report.differences if not max_listed else report.differences[:max_listed]
    for line in shown:
        typer.echo(line)
    hidden = len(report.differences) - len(shown)
    if hidden:
        typer.echo(f"... and {hidden} more")
    summary = f"{report.citizens} citizens, {report.boards} boards, generation {report.generation}"
    if report.clean:
        typer.echo(f"boards match the ledger ({summary})")
        return
    typer.echo(f"{len(report.differences)} differences ({summary}); run `rewards rebuild` to repair", err=True)
    raise typer.Exit(1)


def rebuild_command() -> None:
    """Rebuild every board from the ledger into a new generation and swap it in atomically."""
    container = open_container()
    try:
        with Progress(TextColumn("rebuilding boards"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("rebuild", total=None)
            report = rebuild(
                container.db,
                container.boards,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except RebuildRunning as exc:
        raise fail(exc.message, code=1) from exc
    except redis.RedisError as exc:
        raise fail(f"Redis is unavailable: {exc}") from exc
    finally:
        container.close()
    typer.echo(
        f"rebuilt generation {report.generation} (was {report.previous}): {report.citizens} citizens, "
        f"{report.entries} entries, {report.boards} boards; {report.caught_up} recent entries re-applied"
    )
