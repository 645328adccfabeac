"""`rewards check` exits 1 listing each difference and 0 when clean; `rewards rebuild` repairs (real SQL + Redis)."""

from __future__ import annotations

from typer.testing import CliRunner

from rewards.bootstrap import Container
from rewards.cli import app
from rewards.leaderboard import keys
from rewards.leaderboard.boards import Boards
from tests.integration.test_check_rebuild import award

runner = CliRunner()


def test_check_then_rebuild_then_check(container: Container, cli_env: dict[str, str]) -> None:
    for i in range(6):
        award(container, f"C{i}", f"o{i % 3}")
        container.clock.advance(seconds=1)  # type: ignore[attr-defined]
    ok = runner.invoke(app, ["check"])
    assert ok.exit_code == 0, ok.output
    assert "boards match the ledger" in ok.output
    p = container.settings.leaderboard_key_prefix
    gen = Boards(container.redis, container.settings).generation(fresh=True)
    container.redis.zrem(keys.board_key(p, gen, "at"), keys.member(2))
    container.redis.zadd(keys.board_key(p, gen, "at"), {keys.member(777): -(2**32)})
    bad = runner.invoke(app, ["check"])
    assert bad.exit_code == 1
    assert "board at: citizen 2 is missing" in bad.output
    assert "board at: citizen 777 should not be there" in bad.output
    limited = runner.invoke(app, ["check", "--max-listed", "1"])
    assert limited.exit_code == 1 and "... and 1 more" in limited.output
    rebuilt = runner.invoke(app, ["rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt generation" in rebuilt.output and "3 citizens, 6 entries" in rebuilt.output
    again = runner.invoke(app, ["check"])
    assert again.exit_code == 0, again.output


def test_rebuild_refuses_while_another_runs(container: Container, cli_env: dict[str, str]) -> None:
    container.redis.set(keys.lock_key(container.settings.leaderboard_key_prefix), "other", px=60_000)
    r = runner.invoke(app, ["rebuild"])
    assert r.exit_code == 1
    assert "already running" in r.output


def test_redis_unreachable_is_a_clear_error(container: Container, cli_env: dict[str, str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REWARDS_REDIS_URL", "redis://127.0.0.1:1/0")
    for command in ("check", "rebuild"):
        r = runner.invoke(app, [command])
        assert r.exit_code == 2
        assert "Redis is unavailable" in r.output
