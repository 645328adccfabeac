"""WeChat signatures and message crypto against published test vectors, and the signature check's properties."""

from __future__ import annotations

import string

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from rewards.web.wechat import signature_ok, wechat_signature

# WeChat's callback documentation sample (企业微信 回调配置, the same SHA-1 and AES-CBC scheme as the official
# account's safe mode): verifying the URL with an encrypted echostr.
OFFICIAL = {
    "token": "QDG6eK",
    "aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "receive_id": "wx5823bf96d3bd56c7",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "plain_echostr": "1616140317555161061",
}

# wechatpy's own vectors (tests/test_utils.py and tests/test_crypto.py)
WECHATPY_SIGNATURE = {
    "token": "test",
    "timestamp": "1410685589",
    "nonce": "test",
    "signature": "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff",
}
WECHATPY_CRYPTO = {
    "token": "123456",
    "aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "app_id": "wx49f0ab532d5d035a",
}
WECHATPY_ENCRYPTED = """<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>
<Encrypt><![CDATA[RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>
<AgentID><![CDATA[1]]></AgentID>
</xml>"""
WECHATPY_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
WECHATPY_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObv"
    "esEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NR"
    "rrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oa"
    "zPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)


def test_official_vector_signature_and_decryption() -> None:
    v = OFFICIAL
    assert wechat_signature(v["token"], v["timestamp"], v["nonce"], v["echostr"]) == v["msg_signature"]
    assert signature_ok(v["msg_signature"], v["token"], v["timestamp"], v["nonce"], v["echostr"])
    assert not signature_ok(v["msg_signature"], v["token"], v["timestamp"], "263014781", v["echostr"])
    crypto = WeChatCrypto(v["token"], v["aes_key"], v["receive_id"])
    assert PrpCrypto(crypto.key).decrypt(v["echostr"], v["receive_id"]) == v["plain_echostr"]


def test_wechatpy_signature_vector() -> None:
    v = WECHATPY_SIGNATURE
    assert wechat_signature(v["token"], v["timestamp"], v["nonce"]) == v["signature"]
    assert signature_ok(v["signature"], v["token"], v["timestamp"], v["nonce"])
    assert signature_ok(v["signature"].upper(), v["token"], v["timestamp"], v["nonce"])  # hex case does not matter
    assert not signature_ok(v["signature"][:-1] + "e", v["token"], v["timestamp"], v["nonce"])


def test_wechatpy_crypto_vectors() -> None:
    v = WECHATPY_CRYPTO
    crypto = WeChatCrypto(v["token"], v["aes_key"], v["app_id"])
    encrypted = xmltodict.parse(WECHATPY_ENCRYPTED)["xml"]["Encrypt"]
    assert signature_ok("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", v["token"], "1411525903", "461056294", encrypted)
    message = xmltodict.parse(
        crypto.decrypt_message(
            WECHATPY_ENCRYPTED, "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294"
        )
    )["xml"]
    assert message["Content"] == "test" and message["FromUserName"] == "messense"
    with pytest.raises(InvalidSignatureException):
        crypto.decrypt_message(WECHATPY_ENCRYPTED, "0" * 40, "1411525903", "461056294")

    class FixedPrefix(PrpCrypto):  # the vector was made with this 16-byte random prefix
        def get_random_string(self) -> str:
            return "1234567890123456"

    ours = FixedPrefix(crypto.key).encrypt(WECHATPY_REPLY, v["app_id"]).decode()
    assert ours == WECHATPY_REPLY_ENCRYPT
    assert wechat_signature(v["token"], "1411525903", "461056294", ours) == "407518b7649e86ef23978113f92d27afa9296533"


texts = st.text(alphabet=string.ascii_letters + string.digits + "+/=_-", max_size=40)


@settings(max_examples=200, deadline=None)
@given(token=texts, timestamp=st.integers(0, 2**32).map(str), nonce=texts, extra=st.lists(texts, max_size=1))
def test_signature_round_trip_and_order_independence(token: str, timestamp: str, nonce: str, extra: list[str]) -> None:
    sig = wechat_signature(token, timestamp, nonce, *extra)
    assert signature_ok(sig, token, timestamp, nonce, *extra)
    assert sig == wechat_signature(*reversed([token, timestamp, nonce, *extra]))  # sorted before hashing
    assert not signature_ok(sig, token + "x", timestamp, nonce, *extra)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, 39), token=texts, nonce=texts)
def test_any_changed_character_fails(position: int, token: str, nonce: str) -> None:
    sig = wechat_signature(token, "1409659589", nonce)
    changed = sig[:position] + ("0" if sig[position] != "0" else "1") + sig[position + 1 :]
    assert not signature_ok(changed, token, "1409659589", nonce)
    assert not signature_ok(sig[:position], token, "1409659589", nonce)  # truncated


@pytest.mark.parametrize("missing", [0, 1])
def test_missing_parts_fail(missing: int) -> None:
    parts: list[str | None] = ["1409659589", "nonce"]
    sig = wechat_signature("token", "1409659589", "nonce")
    parts[missing] = None
    assert not signature_ok(sig, "token", *parts)
    assert not signature_ok(None, "token", "1409659589", "nonce")
    assert not signature_ok("", "token", "1409659589", "nonce")
