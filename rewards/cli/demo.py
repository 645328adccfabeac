"""`rewards demo`: a synthetic city seeded through the real flows, past weeks closed and published to the
outbox, then the service on http://127.0.0.1:8000 with a clearly marked development sign-in."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
import uvicorn
from rich.progress import Progress

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cli.common import fail, open_container
from rewards.clock import week_of
from rewards.config import load_settings
from rewards.demo import DemoPlan, is_seeded, seed
from rewards.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add `rewards demo` to the command."""

    @app.command()
    def demo(
        host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port to bind")] = 8000,
        citizens: Annotated[int, typer.Option(min=10, max=200_000, help="synthetic citizens")] = 3000,
        weeks: Annotated[int, typer.Option(min=1, max=12, help="finished weeks to seed before this one")] = 4,
        serve: Annotated[
            bool, typer.Option(help="serve after seeding (--no-serve: seed, close, publish, exit)")
        ] = True,
    ) -> None:
        """Seed a synthetic city, close and publish the past weeks, and serve the whole loop locally."""
        container = build_demo_container()
        token = next(iter(container.settings.api_tokens))
        run_demo(container, citizens=citizens, weeks=weeks)
        base = f"http://{host}:{port}"
        typer.echo("\n随手拍 rewards demo is ready:")
        typer.echo(f"  我的 (development sign-in):  {base}/me   e.g. openid demo-openid-00001")
        typer.echo(f"  weekly leaderboard:          {base}/leaderboard")
        typer.echo(f"  past weeks' announcements:   {base}/weeks")
        typer.echo(f"  rules:                       {base}/rules")
        typer.echo(f"  command-center console:      {base}/console   (sign in with the token below)")
        typer.echo(f"  console / API token:         {token}")
        typer.echo(f"  API docs:                    {base}/docs")
        typer.echo(f"  outbox (published weeks):    {container.settings.outbox_dir}/")
        if not serve:
            return
        container.start_projector()
        try:
            uvicorn.run(create_app(container), host=host, port=port, log_level="warning")
        except OSError as exc:
            raise fail(f"cannot serve on {host}:{port}: {exc}") from exc


def build_demo_container() -> Container:
    """Settings from the environment plus a development sign-in and a fresh console token (refused in production)."""
    try:
        base = load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    if base.environment != "development":
        raise fail("`rewards demo` runs only with REWARDS_ENVIRONMENT=development")
    tokens: dict[str, object] = {t: v.model_dump() for t, v in base.api_tokens.items()}
    if not tokens:
        tokens = {f"demo-{secrets.token_urlsafe(12)}": {"name": "演示坐席", "role": "admin"}}
    return open_container(overrides={"dev_login": True, "api_tokens": tokens})


def run_demo(container: Container, *, citizens: int, weeks: int) -> None:
    """Seed (unless already seeded), rebuild the boards if needed, close and publish every finished week."""
    now = container.clock.now()
    container.prepare()  # a new embedded Redis starts empty: rebuild the boards from an existing ledger
    if is_seeded(container):
        typer.echo("database already seeded: reusing it")
    else:
        with Progress() as bar:
            task = bar.add_task("seeding the city", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            seed(container, DemoPlan(citizens=citizens, weeks=weeks), now, progress)
    current = week_of(now, container.settings.tz)
    week = current
    for _ in range(weeks):
        week = week.previous()
    while week < current:
        closed = container.closer.close(week)
        pub = container.publishing.publish(str(week))
        typer.echo(f"{week}: {len(closed.snapshot.rows)} winners, publication {pub.state}")
        week = week.next()
