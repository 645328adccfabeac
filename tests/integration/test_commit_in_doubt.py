"""A COMMIT whose reply is lost may have landed: the unit of work reports its after-commit effects as failed, so
the boards are marked behind and the projector catches up (the client's retry is a no-op that queues nothing).
The fault suite (test_fault_suite.py) drops a real COMMIT reply through a proxy; this is the quick check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import OperationalError

from rewards.db import Database, FailedEffect, make_engine
from rewards.errors import Unavailable


class LostReply(ConnectionError):
    """What the driver reports when the server closes the connection after receiving COMMIT."""


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    e = make_engine(sqlite_url)
    yield e
    e.dispose()


def lose_commit_replies(engine: Engine) -> None:
    def lost(_conn: Connection) -> None:
        raise OperationalError("COMMIT", {}, LostReply("server closed the connection unexpectedly"))

    event.listen(engine, "commit", lost)


def database(engine: Engine) -> tuple[Database, list[list[FailedEffect]]]:
    db = Database(engine)
    told: list[list[FailedEffect]] = []
    db.when_effects_fail(told.append)
    return db, told


def test_effects_of_a_commit_in_doubt_are_reported_failed_not_run(engine: Engine) -> None:
    db, told = database(engine)
    lose_commit_replies(engine)
    ran: list[str] = []
    with pytest.raises(Unavailable), db.uow() as uow:
        uow.session.execute(text("SELECT 1"))
        uow.after_commit(lambda: ran.append("board update"))
    assert ran == []
    assert len(told) == 1 and len(told[0]) == 1
    assert isinstance(told[0][0][1], OperationalError)


def test_a_commit_in_doubt_without_effects_tells_nobody(engine: Engine) -> None:
    db, told = database(engine)
    lose_commit_replies(engine)
    with pytest.raises(Unavailable), db.uow() as uow:
        uow.session.execute(text("SELECT 1"))
    assert told == []


def test_a_failure_before_the_commit_tells_nobody(engine: Engine) -> None:
    db, told = database(engine)
    with pytest.raises(Unavailable), db.uow() as uow:
        uow.after_commit(lambda: None)
        raise OperationalError("SELECT 1", {}, LostReply("server closed the connection unexpectedly"))
    assert told == []
