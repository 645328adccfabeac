"""The WeChat access token: cached in real Redis, refreshed by one process at a time, wechatpy's retry off."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rewards.bootstrap import Container
from rewards.publish.models import FAILED
from rewards.publish.port import TERMINAL, TRANSIENT, PublishError
from rewards.publish.wechat import WeChatPublisher
from tests.conftest import MakeContainer
from tests.fakes import publish_env
from tests.fakes.publish_env import WEEK, close_w47, service
from tests.fakes.wechat_server import WeChatServer

wx = publish_env.wx
wx_container = publish_env.wx_container


def processes(container: Container, n: int) -> list[WeChatPublisher]:
    """n publishers as n processes would build them: separate clients sharing one Redis."""
    return [WeChatPublisher(container.settings, container.redis) for _ in range(n)]


def race(fns: list) -> list:  # type: ignore[type-arg]
    """Run the functions at the same moment; return their results."""
    barrier, results = threading.Barrier(len(fns)), [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = fns[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_one_process_fetches_the_token_and_the_others_reuse_it(wx_container: Container, wx: WeChatServer) -> None:
    pubs = processes(wx_container, 8)
    tokens = race([lambda p=p: p.client.access_token for p in pubs])
    assert wx.state.token_fetches == 1 and len(set(tokens)) == 1
    key = f"{wx_container.settings.leaderboard_key_prefix}:wechat:{wx.appid}_access_token"
    assert json.loads(wx_container.redis.get(key)) == tokens[0]  # cached in Redis under the run's prefix
    assert 7000 < wx_container.redis.ttl(key) <= 7200
    assert all(p.client.auto_retry is False for p in pubs)


def test_a_refused_token_is_replaced_once_for_everyone(wx_container: Container, wx: WeChatServer) -> None:
    pubs = processes(wx_container, 6)
    used = threading.Barrier(len(pubs))

    def use_then_refresh(p: WeChatPublisher) -> str:
        token = p.client.access_token  # every process has used the current token ...
        used.wait()
        p.refresh_token()  # ... and WeChat refused it to all of them at once
        return token

    assert len(set(race([lambda p=p: use_then_refresh(p) for p in pubs]))) == 1
    assert wx.state.token_fetches == 2
    assert len({p.client.access_token for p in pubs}) == 1


def test_a_wrong_secret_fails_the_publication_with_wechats_code(
    db_engine: Engine, make_container: MakeContainer, wx: WeChatServer, tmp_path: Path
) -> None:
    c = make_container(publish_env.wechat_settings(wx, tmp_path, wechat_app_secret="not-the-secret"), engine=db_engine)
    with pytest.raises(PublishError) as err:
        c.publisher.refresh_token()
    assert (err.value.kind, err.value.code) == (TERMINAL, 40125)
    close_w47(c)
    pub = service(c).publish(WEEK)
    assert (pub.state, pub.error_code) == (FAILED, 40125) and "invalid appsecret" in (pub.error_message or "")


def test_an_unreachable_api_is_retried_a_bounded_number_of_times(
    db_engine: Engine, make_container: MakeContainer, wx: WeChatServer, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = publish_env.wechat_settings(wx, tmp_path, wechat_api_base=f"http://127.0.0.1:{port}/cgi-bin/")
    c = make_container(s, engine=db_engine)
    with pytest.raises(PublishError) as err:
        c.publisher.upload_content_image("banner.png", b"\x89PNG")
    assert err.value.kind == TRANSIENT  # refused: the request never left, so retrying is safe
    close_w47(c)
    sleeper = publish_env.Sleeper()
    pub = service(c, sleeper).publish(WEEK)
    assert pub.state == FAILED and pub.error_code is None
    assert "gave up after 4 attempts" in (pub.error_message or "") and len(sleeper.delays) == 3
