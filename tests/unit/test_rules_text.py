"""Published rules and enforced rules change together: every rule setting moves the engine and the text at once.

`rewards.program.RULE_SETTINGS` lists the Settings fields that are program rules. For each one this walks a
change of the setting and checks that (a) what the engine does changes (an award, the prize table, the week a
point counts toward) and (b) what citizens are told changes: the /rules page lines, the weekly article's rules
paragraph, and the WeChat replies. A property test then checks, for random rule settings, that every number the
text states is the one the engine enforces. Settings that no rule enforced are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from rewards.bootstrap import bootstrap
from rewards.clock import week_of
from rewards.config import DEFAULT_CATEGORIES, Category, Settings, load_settings
from rewards.errors import ConfigError
from rewards.prizes import PrizeTier
from rewards.program import RULE_SETTINGS, Program
from rewards.scoring.model import AwardDecision, CaseFacts, CitizenFacts, NoAward
from rewards.scoring.rules import award_on_filing, award_on_rating
from rewards.scoring.service import rule_settings
from rewards.web.wechat import welcome_text

REPORTER = CitizenFacts(citizen_id=7, verified=True, banned=False)
# Sunday 2026-11-29 17:30 UTC is already Monday 01:30 in Asia/Shanghai (W49) but still Sunday in Europe/London (W48)
NEAR_MIDNIGHT = datetime(2026, 11, 29, 17, 30, tzinfo=UTC)


def program_of(settings: Settings) -> Program:
    return Program(rule_settings(settings), settings.prize_table, settings.timezone)


def texts(settings: Settings) -> dict[str, str]:
    """Everything citizens are told about the rules under these settings."""
    program = program_of(settings)
    return {
        "rules page": "\n".join(f"{line.title} {line.text}" for line in program.lines())
        + "".join(f"{g}{n}{p}" for g, n, p in program.category_points()),
        "article": program.summary(),
        "wechat welcome": welcome_text("https://example.org/rules", program.prizes.places),
    }


def behaviour(settings: Settings) -> tuple[object, ...]:
    """What the engine does under these settings, in the places each rule setting decides."""
    rules = rule_settings(settings)
    case = CaseFacts(1, "LZ1", "street_lamp", REPORTER, NEAR_MIDNIGHT)
    awards = tuple(award_on_filing(case, rules, today) for today in range(3))
    rating_awards = tuple(award_on_rating(1, "LZ1", 7, rules, today) for today in range(5))
    table = settings.prize_table
    return (
        awards,
        rating_awards,
        table.places,
        tuple(table.prize_for(rank) for rank in range(1, 101)),
        str(week_of(NEAR_MIDNIGHT, settings.tz)),
    )


def lamp_points(points: int) -> list[Category]:
    return [c.model_copy(update={"points": points}) if c.code == "street_lamp" else c for c in DEFAULT_CATEGORIES]


CHANGES: dict[str, Callable[[], dict[str, object]]] = {
    "categories": lambda: {"categories": lamp_points(3)},
    "daily_award_limit": lambda: {"daily_award_limit": 1},
    "prize_tiers": lambda: {
        "prize_tiers": [
            PrizeTier(1, 1, "一等奖", 800),
            PrizeTier(2, 10, "二等奖", 100),
            PrizeTier(11, 50, "参与奖", 20),
        ]
    },
    "timezone": lambda: {"timezone": "Europe/London"},
    "rating_award_points": lambda: {"rating_award_points": 2},
    "rating_award_daily_cap": lambda: {"rating_award_daily_cap": 1},
}
# a setting that only matters when another is on is walked from that base (the cap needs the rating award on)
BASES: dict[str, dict[str, object]] = {"rating_award_daily_cap": {"rating_award_points": 1}}


def test_every_rule_setting_is_walked() -> None:
    assert set(CHANGES) == set(RULE_SETTINGS)
    assert set(RULE_SETTINGS) <= set(Settings.model_fields)


@pytest.mark.parametrize("name", RULE_SETTINGS)
def test_a_rule_setting_changes_behaviour_and_text_together(name: str) -> None:
    base = BASES.get(name, {})
    before, after = load_settings(**base), load_settings(**(base | CHANGES[name]()))
    assert behaviour(before) != behaviour(after), f"{name}: the engine ignores the setting"
    told_before, told_after = texts(before), texts(after)
    for where in ("rules page", "article"):
        assert told_before[where] != told_after[where], f"{name}: the {where} does not say what changed"


def test_the_engine_and_the_text_share_one_rules_object() -> None:
    settings = load_settings(database_url="sqlite://", daily_award_limit=2)
    # bootstrap itself, not make_container: a unit test of the wiring, with no database or Redis server behind it
    services = bootstrap(settings, redis_client=redis.Redis(host="127.0.0.1", port=1))  # no Redis call is made
    assert services.scoring.rules is services.program.rules
    assert services.leaderboard.prizes == services.program.prizes == settings.prize_table


@pytest.mark.parametrize("removed", ["first_reporter_only", "anonymous_earns"])
def test_settings_no_rule_enforces_are_refused(removed: str) -> None:
    with pytest.raises(ConfigError, match=removed.upper()):
        load_settings(**{removed: True})


def test_an_anonymous_report_never_earns_and_the_text_says_so() -> None:
    settings = load_settings()
    case = CaseFacts(1, "LZ1", "street_lamp", None, NEAR_MIDNIGHT)
    assert isinstance(award_on_filing(case, rule_settings(settings), 0), NoAward)
    assert all("匿名" in text and "不计分" in text for text in list(texts(settings).values())[:2])


tiers = st.lists(st.tuples(st.integers(1, 15), st.integers(0, 1000)), min_size=1, max_size=5).map(
    lambda bands: sorted(bands, key=lambda b: -b[1])
)


@given(
    points=st.lists(st.integers(0, 9), min_size=len(DEFAULT_CATEGORIES), max_size=len(DEFAULT_CATEGORIES)),
    limit=st.none() | st.integers(1, 50),
    bands=tiers,
)
def test_every_number_the_text_states_is_the_one_enforced(
    points: list[int], limit: int | None, bands: list[tuple[int, int]]
) -> None:
    categories = [c.model_copy(update={"points": p}) for c, p in zip(DEFAULT_CATEGORIES, points, strict=True)]
    first, prize_tiers = 1, []
    for i, (width, value) in enumerate(bands):
        prize_tiers.append(PrizeTier(first, first + width - 1, f"奖{i}", value))
        first += width
    settings = load_settings(categories=categories, daily_award_limit=limit, prize_tiers=prize_tiers)
    program, told = program_of(settings), texts(settings)
    # the prize list: the places and every band with its value, as the prize table pays them
    for where in ("rules page", "article"):
        assert f"每周前 {settings.prize_table.places} 名获奖" in told[where]
        for t in settings.prize_table.tiers:
            assert f"{t.band()} {t.name}" in told[where] and f"{t.value} 元" in told[where]
    # the daily limit: stated exactly when the engine enforces one
    case = CaseFacts(1, "LZ1", categories[0].code, REPORTER, NEAR_MIDNIGHT)
    limited = limit is not None and isinstance(award_on_filing(case, program.rules, limit), NoAward)
    assert limited == (limit is not None)
    assert (f"每天最多 {limit} 件" in told["article"]) == (limit is not None)
    # points per category: the rules page lists what each category earns
    for c in categories:
        decision = award_on_filing(CaseFacts(1, "LZ1", c.code, REPORTER, NEAR_MIDNIGHT), program.rules, 0)
        earned = decision.points if isinstance(decision, AwardDecision) else 0
        assert f"{c.group}{c.name}{earned}" in told["rules page"]
