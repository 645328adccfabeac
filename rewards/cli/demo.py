"""`rewards demo`: a synthetic city seeded through the real flows, past weeks closed and published to the
outbox, then the service (http://127.0.0.1:8000 unless --host/--port say otherwise) with a clearly marked
development sign-in. The URLs to open are printed once the server really listens."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Annotated

import typer
import uvicorn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cli.common import fail, open_container
from rewards.clock import week_of
from rewards.config import Settings, load_settings
from rewards.demo import DemoPlan, is_seeded, seed, seed_review, showcase_citizen
from rewards.errors import ConfigError

DEFAULT_PLAN = DemoPlan()


def register(app: typer.Typer) -> None:
    """Add `rewards demo` to the command."""

    @app.command()
    def demo(
        host: Annotated[str, typer.Option(help="address to bind (0.0.0.0: other machines)")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="port to bind")] = 8000,
        citizens: Annotated[int, typer.Option(min=10, max=200_000, help="synthetic citizens")] = DEFAULT_PLAN.citizens,
        weeks: Annotated[
            int, typer.Option(min=1, max=12, help="finished weeks to seed before this one")
        ] = DEFAULT_PLAN.weeks,
        reports_per_day: Annotated[
            int, typer.Option(min=10, max=2000, help="reports per day")
        ] = DEFAULT_PLAN.reports_per_day,
        serve: Annotated[
            bool, typer.Option(help="serve after seeding (--no-serve: seed, close, publish, exit)")
        ] = True,
    ) -> None:
        """Seed a synthetic city, close and publish the past weeks, and serve the whole loop locally."""
        started = time.monotonic()
        container = build_demo_container(f"http://{display_host(host)}:{port}")
        token = next(iter(container.settings.api_tokens))
        plan = DemoPlan(citizens=citizens, weeks=weeks, reports_per_day=reports_per_day)
        run_demo(container, plan)
        typer.echo(f"prepared in {time.monotonic() - started:.1f} s")
        if not serve:
            typer.echo("\nseeded, closed and published; nothing is served (--no-serve).")
            typer.echo("Run `rewards demo` (same folder) to serve this data: it is reused, not seeded again.")
            return
        container.start_projector()
        who = showcase_citizen(container) or "demo-openid-00001"
        ready = ready_text(f"http://{display_host(host)}:{port}", token, who, container.settings)
        server = uvicorn.Server(uvicorn.Config(create_app(container), host=host, port=port, log_level="warning"))
        threading.Thread(target=announce_when_listening, args=(server, ready), daemon=True).start()
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; say what to do instead
            if server.started:
                raise
        if not server.started:
            raise fail(f"cannot serve on {host}:{port} (in use?): try another port, e.g. `rewards demo --port 8081`")


def display_host(host: str) -> str:
    """The host to put in printed URLs (a wildcard bind is opened through loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def announce_when_listening(server: uvicorn.Server, text: str) -> None:
    """Print what to open once the server accepts connections (never before: nothing would answer)."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    typer.echo(text)


def ready_text(base: str, token: str, citizen: str, settings: Settings) -> str:
    """What to look at first, with the URLs that now answer."""
    return "\n".join(
        (
            "",
            f"随手拍 rewards demo is ready on {base}  (Ctrl+C stops it; another port: --port 8081)",
            "",
            "  As a citizen:",
            f"    我的 (development sign-in):   {base}/me   sign in as {citizen} (this week's leader)",
            f"    this week's leaderboard:      {base}/leaderboard",
            f"    past weeks' announcements:    {base}/weeks",
            "                                  last week is in 公示: object to an entry there; 我的 shows",
            "                                  your objections and, for an earlier week's winners, the claim code",
            f"    rules:                        {base}/rules",
            "  As a validator:",
            f"    command-center console:       {base}/console   sign in with the token below;",
            "                                  keys V valid · D duplicate · X invalid · J/K next/previous · F photo",
            f"    objections and prize claims:  {base}/console/review   (payout export: role admin)",
            f"    console / API token:          {token}",
            "  As an integrator:",
            f"    API docs (offline):           {base}/docs   and {base}/redoc",
            f"    published articles (outbox):  {settings.outbox_dir}/",
        )
    )


def build_demo_container(base_url: str | None = None) -> Container:
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
    overrides: dict[str, object] = {"dev_login": True, "api_tokens": tokens}
    if base_url is not None and base.public_base_url == Settings.model_fields["public_base_url"].default:
        overrides["public_base_url"] = base_url  # the articles' "阅读原文" links point at this demo
    return open_container(overrides=overrides)


def run_demo(container: Container, plan: DemoPlan) -> None:
    """Seed (unless already seeded), rebuild the boards if needed, close and publish every finished week."""
    now = container.clock.now()
    container.prepare()  # a new embedded Redis starts empty: rebuild the boards from an existing ledger
    if is_seeded(container):
        typer.echo("database already seeded: reusing it")
    else:
        started = time.monotonic()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns) as bar:
            task = bar.add_task("seeding the city (reports)", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            seed(container, plan, now, progress)
        typer.echo(f"seeded in {time.monotonic() - started:.1f} s")
    for line in seed_review(container, plan.weeks, now):  # 公示, objections, 定榜 and claims (issue 12)
        typer.echo(line)
    current = week_of(now, container.settings.tz)
    week = current
    for _ in range(plan.weeks):
        week = week.previous()
    while week < current:
        closed = container.closer.close(week)
        pub = container.publishing.publish(str(week))
        typer.echo(f"{week}: {len(closed.snapshot.rows)} winners, publication {pub.state}")
        week = week.next()
