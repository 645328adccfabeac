"""The WeChat message callback over HTTP: official sample XML layouts, plain and safe (AES) mode, real points."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis
import xmltodict
from fastapi.testclient import TestClient
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from rewards.app import create_app
from rewards.bootstrap import bootstrap
from rewards.cases.models import Citizen
from tests.conftest import auth, test_settings

TOKEN = "test-wechat-token"
APP_ID = "wxcallbacktest0001"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters, like WeChat's EncodingAESKey
RULES = "http://127.0.0.1:8000/rules"
TIERS = [
    {"first": 1, "last": 1, "name": "一等奖", "value": 500},
    {"first": 2, "last": 2, "name": "二等奖", "value": 200},
]

# The layouts of WeChat's documentation (接收普通消息 / 接收事件推送), FromUserName filled in per test.
TEXT = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[{openid}]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[{content}]]></Content>
  <MsgId>1234567890123456</MsgId>
  <MsgDataId>xxxx</MsgDataId>
  <Idx>xxxx</Idx>
</xml>"""
CLICK = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[{openid}]]></FromUserName>
  <CreateTime>123456789</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[CLICK]]></Event>
  <EventKey><![CDATA[{key}]]></EventKey>
</xml>"""
SUBSCRIBE = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[{openid}]]></FromUserName>
  <CreateTime>123456789</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[subscribe]]></Event>
</xml>"""
UNSUBSCRIBE = SUBSCRIBE.replace("[subscribe]", "[unsubscribe]")
IMAGE = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[{openid}]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[image]]></MsgType>
  <PicUrl><![CDATA[this is a url]]></PicUrl>
  <MediaId><![CDATA[media_id]]></MediaId>
  <MsgId>1234567890123456</MsgId>
</xml>"""


@pytest.fixture
def settings() -> Any:  # overrides conftest's: the container uses it
    return test_settings(wechat_token=TOKEN, wechat_app_id=APP_ID, wechat_aes_key=AES_KEY, prize_tiers=TIERS)


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


_nonces = itertools.count(461056294)  # WeChat signs every callback with a new nonce; one is admitted once


def query(client: TestClient, nonce: str | None = None, **extra: str) -> dict[str, str]:
    nonce = nonce or str(next(_nonces))
    ts = str(int(client.app.state.container.clock.now().timestamp()))
    return {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, **extra}


@contextmanager
def in_mode(client: TestClient, *, safe: bool) -> Iterator[TestClient]:
    """The client itself for safe mode; for plain mode the same service without an AES key (with one configured,
    plain messages are refused)."""
    if safe:
        yield client
        return
    c = client.app.state.container
    s = c.settings.model_copy(update={"wechat_aes_key": None})
    with TestClient(create_app(bootstrap(s, clock=c.clock, engine=c.engine, redis_client=c.redis))) as plain:
        yield plain


def post(client: TestClient, xml: str, *, safe: bool = False, nonce: str | None = None) -> Any:
    """POST a message as WeChat does, in plain or safe mode."""
    q = query(client, nonce)
    nonce = q["nonce"]
    body = xml
    if safe:
        envelope = xmltodict.parse(WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(xml, nonce, q["timestamp"]))
        encrypted = envelope["xml"]["Encrypt"]
        q.update(encrypt_type="aes", msg_signature=envelope["xml"]["MsgSignature"])
        to_user = "  <ToUserName><![CDATA[toUser]]></ToUserName>"
        body = f"<xml>\n{to_user}\n  <Encrypt><![CDATA[{encrypted}]]></Encrypt>\n</xml>"
    return client.post("/wechat/callback", params=q, content=body.encode(), headers={"Content-Type": "text/xml"})


def reply(response: Any, *, safe: bool = False) -> dict[str, str]:
    """Return the passive reply's fields (decrypting and checking the signature in safe mode)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    text = response.text
    if safe:
        outer = xmltodict.parse(text)["xml"]
        assert set(outer) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
        assert outer["MsgSignature"] == sign(TOKEN, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
        text = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
            text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
        )
    fields: dict[str, str] = xmltodict.parse(text)["xml"]
    return fields


def content(response: Any, openid: str, *, safe: bool = False) -> str:
    fields = reply(response, safe=safe)
    assert fields["MsgType"] == "text" and fields["ToUserName"] == openid and fields["FromUserName"] == "toUser"
    assert openid not in fields["Content"]  # never echo the openid in the text
    return fields["Content"]


def award(client: TestClient, openid: str, n: int, *, verified: bool, first: int) -> int:
    """File n valid cases reported by a citizen; return the next case number."""
    for i in range(first, first + n):
        case = {
            "case_id": f"LZ-2026-{i:06d}",
            "category": "street_lamp",
            "description": "路灯不亮",
            "lat": 30.0 + i * 0.05,
            "lon": 103.0,
            "district": "城关区",
            "reporter": {"openid": openid, "name": "张三明", "verified": verified},
        }
        assert client.post("/api/v1/cases", json=case, headers=auth()).status_code == 201
        r = client.post(f"/api/v1/cases/LZ-2026-{i:06d}/verdict", json={"verdict": "valid"}, headers=auth())
        assert r.status_code == 200 and r.json()["status"] == "filed", r.text
    return first + n


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    """Last week D earns 4; this week C (not verified) 4, A 3, B 2, D 1. Two prize places."""
    clock = client.app.state.container.clock
    clock.set(clock.now() - timedelta(days=7))
    n = award(client, "oD", 4, verified=True, first=1)
    clock.set(clock.now() + timedelta(days=7))
    for openid, points, verified in (("oC", 4, False), ("oA", 3, True), ("oB", 2, True), ("oD", 1, True)):
        clock.advance(minutes=1)
        n = award(client, openid, points, verified=verified, first=n)
    return client


# the first rank reply to each citizen also mentions the milestone newly reached, once (rewards/engagement)
NEWS = "\n【新里程碑】恭喜您达成“首次有效举报”！在“我的”页面可查看详情。"


def expected(week: str, total: str, prize: str) -> str:
    return f"【我的积分】2026年第48周\n本周积分：{week}\n累计积分：{total}\n{prize}\n活动规则：{RULES}"


EXPECTED = {
    "oA": expected("3 分，排名第 2 名", "3 分，排名第 3 名", "您已进入本周获奖名单：第 1 名（一等奖），请继续保持！"),
    "oB": expected("2 分，排名第 3 名", "2 分，排名第 4 名", "您已进入本周获奖名单：第 2 名（二等奖），请继续保持！"),
    "oD": expected("1 分，排名第 4 名", "5 分，排名第 1 名", "距本周获奖名单（前 2 名）还差 2 分，加油！"),
    "oC": expected("4 分，排名第 1 名", "4 分，排名第 2 名", "未完成实名认证，暂不参与评奖。"),
}


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
def test_rank_reply_reads_real_points(seeded: TestClient, safe: bool) -> None:
    with in_mode(seeded, safe=safe) as http:
        for openid, text in EXPECTED.items():
            first = content(post(http, TEXT.format(openid=openid, content="排名"), safe=safe), openid, safe=safe)
            assert first == text + NEWS
        for word in ("积分", "rank", " RANK "):
            r = post(http, TEXT.format(openid="oA", content=word), safe=safe)
            assert content(r, "oA", safe=safe) == EXPECTED["oA"]
        r = post(http, CLICK.format(openid="oD", key="MY_RANK"), safe=safe)
        assert content(r, "oD", safe=safe) == EXPECTED["oD"]


def test_rank_reply_falls_back_to_the_ledger_when_redis_is_down(seeded: TestClient) -> None:
    c = seeded.app.state.container
    # a Redis nobody listens on (no retries: redis-py's default backoff would spend ~4 s per call)
    dead = redis.Redis(host="127.0.0.1", port=1, decode_responses=True, retry=Retry(NoBackoff(), 0))
    plain = c.settings.model_copy(update={"wechat_aes_key": None})
    other = bootstrap(plain, clock=c.clock, engine=c.engine, redis_client=dead)
    with TestClient(create_app(other)) as down:
        for openid, text in EXPECTED.items():
            assert content(post(down, TEXT.format(openid=openid, content="排名")), openid) == text + NEWS


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
def test_subscribe_help_and_silent_events(client: TestClient, safe: bool) -> None:
    with in_mode(client, safe=safe) as http:
        check_subscribe_help_and_silent_events(http, safe)


def check_subscribe_help_and_silent_events(client: TestClient, safe: bool) -> None:
    welcome = content(post(client, SUBSCRIBE.format(openid="oNew"), safe=safe), "oNew", safe=safe)
    assert welcome.startswith("感谢关注“随手拍”！") and RULES in welcome and "前 2 名" in welcome
    for xml in (
        TEXT.format(openid="oNew", content="你好"),
        CLICK.format(openid="oNew", key="EVENTKEY"),
        IMAGE.format(openid="oNew"),
    ):
        help_ = content(post(client, xml, safe=safe), "oNew", safe=safe)
        assert "回复“排名”或“积分”" in help_ and RULES in help_
    not_ranked = content(post(client, TEXT.format(openid="oNew", content="排名"), safe=safe), "oNew", safe=safe)
    assert not_ranked.startswith("您暂未上榜。") and "经指挥中心立案即可获得积分" in not_ranked
    r = post(client, UNSUBSCRIBE.format(openid="oNew"), safe=safe)
    assert r.status_code == 200 and r.text == "success"
    with client.app.state.container.read() as session:  # messages never create citizens
        assert session.scalar(select(func.count(Citizen.id))) == 0


def test_a_retried_message_gets_the_same_reply_and_changes_nothing(seeded: TestClient) -> None:
    with in_mode(seeded, safe=False) as http:  # WeChat's retry: the same signed URL and the same body
        first = post(http, TEXT.format(openid="oB", content="排名"), nonce="77")
        again = post(http, TEXT.format(openid="oB", content="排名"), nonce="77")
    assert first.text == again.text and content(again, "oB") == EXPECTED["oB"] + NEWS


def test_reply_carries_the_clock_time(client: TestClient) -> None:
    with in_mode(client, safe=False) as http:
        fields = reply(post(http, TEXT.format(openid="oX", content="hi")))
    assert fields["CreateTime"] == str(int(client.app.state.container.clock.now().timestamp()))


def test_url_verification_echoes_echostr(client: TestClient) -> None:
    r = client.get("/wechat/callback", params=query(client, echostr="5837397520665436492"))
    assert r.status_code == 200 and r.text == "5837397520665436492"
    bad = query(client, echostr="x")
    bad["signature"] = bad["signature"][:-1] + ("0" if bad["signature"][-1] != "0" else "1")
    assert client.get("/wechat/callback", params=bad).status_code == 403
    assert client.get("/wechat/callback", params={"echostr": "x"}).status_code == 403
    assert client.get("/wechat/callback", params=query(client)).status_code == 400  # signed, but no echostr
    stale = query(client, echostr="x")
    old = str(int(stale["timestamp"]) - 301)
    stale.update(timestamp=old, signature=sign(TOKEN, old, stale["nonce"]))
    r = client.get("/wechat/callback", params=stale)
    assert r.status_code == 403 and r.json()["error"] == "stale_timestamp"


def test_official_signature_vector_over_http(client: TestClient) -> None:
    """wechatpy's check_signature vector: token 'test', timestamp 1410685589, nonce 'test'."""
    c = client.app.state.container
    s = c.settings.model_copy(update={"wechat_token": SecretStr("test"), "wechat_callback_max_skew_seconds": 0})
    other = bootstrap(s, clock=c.clock, engine=c.engine, redis_client=c.redis)
    with TestClient(create_app(other)) as vector:
        good = {"signature": "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "timestamp": "1410685589", "nonce": "test"}
        assert vector.get("/wechat/callback", params={**good, "echostr": "ok"}).text == "ok"
        bad = {**good, "signature": "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe"}
        assert vector.get("/wechat/callback", params={**bad, "echostr": "ok"}).status_code == 403


def test_bad_signatures_are_403(client: TestClient) -> None:
    xml = TEXT.format(openid="oA", content="排名")
    q = query(client)
    q["signature"] = "0" * 40
    r = client.post("/wechat/callback", params=q, content=xml.encode())
    assert r.status_code == 403 and r.json()["error"] == "bad_signature"
    assert client.post("/wechat/callback", content=xml.encode()).status_code == 403
    # safe mode: the plain signature is right but msg_signature does not cover this Encrypt
    good = post(client, xml, safe=True)
    assert good.status_code == 200
    q = query(client, encrypt_type="aes", msg_signature="0" * 40)
    body = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[AAAA]]></Encrypt></xml>"
    assert client.post("/wechat/callback", params=q, content=body.encode()).status_code == 403


def test_malformed_messages_are_400(client: TestClient) -> None:
    with in_mode(client, safe=False) as plain:
        check_malformed_plain_messages(plain)
    # a correctly signed Encrypt that is not a WeChat ciphertext
    q = query(client)
    q.update(encrypt_type="aes", msg_signature=sign(TOKEN, q["timestamp"], q["nonce"], "bm90IGNpcGhlcnRleHQ="))
    body = b"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[bm90IGNpcGhlcnRleHQ=]]></Encrypt></xml>"
    r = client.post("/wechat/callback", params=q, content=body)
    assert r.status_code == 400 and r.json()["error"] == "bad_message"


def check_malformed_plain_messages(client: TestClient) -> None:
    def raw(body: bytes, **extra: str) -> Any:
        return client.post("/wechat/callback", params=query(client, **extra), content=body)

    assert raw(b"<xml><ToUserName>").status_code == 400
    assert raw(b"not xml at all").status_code == 400
    assert raw(b"<xml><MsgType>text</MsgType></xml>").status_code == 400  # no FromUserName
    assert raw(TEXT.format(openid="o]]><x>", content="排名").encode()).status_code == 400  # not an openid
    assert raw(b"<xml>" + b"<a>x</a>" * 10_000 + b"</xml>").status_code == 413  # too large (64 KiB)
    assert raw(b"\xff\xfe<xml/>").status_code == 400
    bomb = b'<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><xml><c>&b;</c></xml>'
    assert raw(bomb).status_code == 400
    assert raw(b"<xml/>", encrypt_type="rsa").status_code == 400


def test_safe_mode_needs_its_settings(client: TestClient) -> None:
    c = client.app.state.container
    s = c.settings.model_copy(update={"wechat_aes_key": None})
    with TestClient(create_app(bootstrap(s, clock=c.clock, engine=c.engine, redis_client=c.redis))) as plain_only:
        r = post(plain_only, TEXT.format(openid="oA", content="排名"), safe=True)
        assert r.status_code == 503 and r.json()["error"] == "wechat_unconfigured"
        assert post(plain_only, TEXT.format(openid="oA", content="排名")).status_code == 200
