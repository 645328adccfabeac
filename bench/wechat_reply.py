"""WeChat "排名" reply benchmark (not a test): real Redis, a SQLite ledger, figures next to a same-run baseline.

    .venv/bin/python bench/wechat_reply.py            # 50,000 citizens, 100,000 ledger lines
    .venv/bin/python bench/wechat_reply.py --quick    # 2,000 citizens: a short run of the same code
    .venv/bin/python bench/wechat_reply.py --tiny     # 300 citizens: a smoke run (tests/e2e/test_bench_smoke.py)

BENCH_REDIS_URL (default redis://127.0.0.1:6379/0) names the server; keys live under a private prefix and are
unlinked at the end. Prints p50/p99 of the whole HTTP callback (signature check, rate limit, standing, reply
rendering; plain and AES safe mode) and of the ledger fallback used when Redis is down, each against GET /healthz
through the same ASGI stack in the same run. WeChat gives a passive reply 5 seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient
from wechatpy.crypto import WeChatCrypto

from rewards import migrate
from rewards.app import create_app
from rewards.bootstrap import bootstrap
from rewards.cases.models import Case, Citizen
from rewards.clock import FixedClock
from rewards.config import load_settings
from rewards.db import make_engine
from rewards.leaderboard.rebuild import rebuild
from rewards.scoring.ledger import LedgerEntry

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
TOKEN, APP_ID = "bench-token", "wxbench000000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TEXT = (
    "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
    "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[排名]]></Content>"
    "<MsgId>1</MsgId></xml>"
)


def seed(url: str, citizens: int, lines: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    rng = random.Random(7)
    with engine.begin() as conn:
        conn.execute(
            insert(Citizen),
            [
                dict(
                    id=i,
                    openid=f"o{i}",
                    verified=i % 5 != 0,
                    banned=False,
                    snapshot_user=False,
                    created_at=NOW,
                    updated_at=NOW,
                )
                for i in range(1, citizens + 1)
            ],
        )
        conn.execute(
            insert(Case),
            [
                dict(
                    id=n,
                    case_id=f"C{n}",
                    reporter_id=rng.randint(1, citizens),
                    category="street_lamp",
                    status="filed",
                    status_at=NOW,
                    reported_at=NOW,
                    updated_at=NOW,
                    description="",
                    photos=[],
                    coord_system="wgs84",
                )
                for n in range(1, lines + 1)
            ],
        )
        rows = conn.execute(Case.__table__.select().with_only_columns(Case.id, Case.reporter_id)).all()
        conn.execute(
            insert(LedgerEntry),
            [
                dict(
                    citizen_id=cid,
                    case_pk=pk,
                    rule="filed",
                    points=rng.choice([1, 1, 2]),
                    week="2026-W48" if pk % 3 else "2026-W47",
                    reason="有效举报",
                    created_at=NOW - timedelta(minutes=pk % 5000),
                )
                for pk, cid in rows
            ],
        )
    engine.dispose()


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="300 citizens, 40 requests per measure (a smoke run)")
    size.add_argument("--quick", action="store_true", help="2,000 citizens, 200 requests per measure")
    args = parser.parse_args()
    citizens, lines, n = (300, 600, 40) if args.tiny else (2_000, 4_000, 200) if args.quick else (50_000, 100_000, 500)
    client = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), decode_responses=True)
    prefix = f"bench-wx-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seed(url, citizens, lines)
        plain_settings = load_settings(
            database_url=url,
            leaderboard_key_prefix=prefix,
            wechat_token=TOKEN,
            wechat_app_id=APP_ID,
            rate_limit_per_ip=10**9,
            rate_limit_per_citizen=10**9,
        )
        # safe mode refuses plain messages, so plain and safe replies are measured on two accounts' settings
        settings = plain_settings.model_copy(
            update={"wechat_aes_key": load_settings(wechat_aes_key=AES_KEY).wechat_aes_key}
        )
        clock = FixedClock(NOW)
        container = bootstrap(plain_settings, clock=clock, redis_client=client)
        safe_container = bootstrap(settings, clock=clock, engine=container.engine, redis_client=client)
        dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
        down = bootstrap(plain_settings, clock=clock, engine=container.engine, redis_client=dead)
        try:
            rebuild(container.db, container.boards)
            ts = str(int(NOW.timestamp()))
            crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
            rng = random.Random(1)
            nonces = iter(range(10**9))

            def ask(http: TestClient, safe: bool) -> None:
                xml = TEXT.format(openid=f"o{rng.randint(1, citizens)}")
                nonce = f"n{next(nonces)}"  # a signed (timestamp, nonce) is admitted once: replays are refused
                params = {
                    "signature": hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest(),
                    "timestamp": ts,
                    "nonce": nonce,
                }
                if safe:
                    enc = crypto.encrypt_message(xml, nonce, ts)
                    encrypt = enc.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
                    sig = enc.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
                    params.update(encrypt_type="aes", msg_signature=sig)
                    xml = f"<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
                r = http.post("/wechat/callback", params=params, content=xml.encode())
                assert r.status_code == 200 and ("<Encrypt>" if safe else "<Content>") in r.text, r.text

            with (
                TestClient(create_app(container)) as http,
                TestClient(create_app(safe_container)) as http_safe,
                TestClient(create_app(down)) as http_down,
            ):
                base = timed(lambda: http.get("/healthz"), n)
                plain = timed(lambda: ask(http, False), n)
                safe = timed(lambda: ask(http_safe, True), n)
                fallback = timed(lambda: ask(http_down, False), max(20, n // 10))
            print(f"{citizens:,} citizens, {lines:,} ledger lines; p50 / p99 in ms, ratio of p50 to the baseline")
            print(f"  baseline GET /healthz           {base[0]:7.2f} / {base[1]:7.2f}")
            for name, (p50, p99) in (
                ("排名 plain (Redis boards)", plain),
                ("排名 safe mode (Redis boards)", safe),
                ("排名 plain, Redis down (ledger)", fallback),
            ):
                print(f"  {name:<32}{p50:7.2f} / {p99:7.2f}   x{p50 / base[0]:.1f}")
        finally:
            for key in client.scan_iter(match=f"*{prefix}*", count=1000):
                client.unlink(key)
            container.close()


if __name__ == "__main__":
    main()
