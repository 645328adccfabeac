"""Open311 POST requests: check the api_key and turn the spec's form fields into a ReportCase command.

Who reported (docs/intake.md): `device_id` (or `account_id`, the same thing) carries the citizen's WeChat
openid, as the 随手拍 mini-program sends it; without one, `email` and then `phone` identify the citizen
(as the openids "email:<address>" and "phone:<digits>"), so a citizen known only by e-mail still collects
points; with none of them the report is anonymous and earns nothing. Names are joined family name first
(last_name + first_name). Open311 cannot vouch for identity, so it never marks a citizen verified.
"""

from __future__ import annotations

import hmac
import math
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import unquote_plus

from intake_adapter.open311 import Open311Error
from rewards.cases.commands import ReportCase, Reporter
from rewards.cases.schemas import text_problem
from rewards.config import Settings

FIELDS = frozenset(
    {
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "description",
        "media_url",
    }
)
MULTILINE = frozenset({"description"})  # the only field that may hold tab, newline and carriage return
CASE_PREFIX = "O311-"
_NAMESPACE = uuid.UUID("6f1c3d0e-3b1a-5e55-9a0c-0a311c0de5e1")  # fixed: idempotency keys map to the same id
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
_PHONE = re.compile(r"^[0-9+\- ]{3,32}$")
_URL = re.compile(r"^https?://\S{1,1000}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


def check_api_key(value: str | None, keys: Sequence[str]) -> int:
    """Return the index of the matching configured key (compared in constant time); 403 otherwise."""
    if not value:
        raise Open311Error(403, "api_key was not provided")
    found = None
    for i, key in enumerate(keys):
        if hmac.compare_digest(key.encode(), value.encode()):
            found = i
    if found is None:
        raise Open311Error(403, "invalid api_key")
    return found


def form_api_key(body: bytes) -> str | None:
    """Return the api_key field of an urlencoded form without decoding any other field (None: not sent).

    Only the field names are decoded, so the key is checked before the rest of the form is parsed at all.
    """
    found: str | None = None
    for pair in body.split(b"&"):
        name, _, value = pair.partition(b"=")
        if unquote_plus(name.decode("latin-1")) != "api_key":
            continue
        if found is not None:
            raise Open311Error(400, "field 'api_key' was sent more than once")
        found = unquote_plus(value.decode("latin-1"), encoding="utf-8", errors="replace")
    return found


def case_id_for(key_index: int, idempotency_key: str | None) -> str:
    """Return a new case id; the same Idempotency-Key from the same client always gives the same one."""
    if idempotency_key is None:
        return CASE_PREFIX + uuid.uuid4().hex
    if not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise Open311Error(400, "Idempotency-Key must be 1-128 printable ASCII characters")
    return CASE_PREFIX + uuid.uuid5(_NAMESPACE, f"{key_index}:{idempotency_key}").hex


def single_values(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Return the form as a dict; a field sent twice, an unknown field or an attribute is a 400."""
    form: dict[str, str] = {}
    for name, value in items:
        if name.startswith("attribute["):
            raise Open311Error(400, f"{name}: these services have no attributes (metadata is false)")
        if name not in FIELDS:
            raise Open311Error(400, f"unknown field {name!r}")
        if name in form:
            raise Open311Error(400, f"field {name!r} was sent more than once")
        problem = text_problem(value, multiline=name in MULTILINE)  # NUL, other controls: refused on every database
        if problem is not None:
            raise Open311Error(400, f"{name}: {problem}")
        form[name] = value
    return form


def _text(form: dict[str, str], name: str, max_len: int, pattern: re.Pattern[str] | None = None) -> str | None:
    value = form.get(name, "").strip()
    if not value:
        return None
    if len(value) > max_len:
        raise Open311Error(400, f"{name} is longer than {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise Open311Error(400, f"{name} is not valid: {value[:64]!r}")
    return value


def _coordinate(form: dict[str, str], name: str, limit: float) -> float:
    try:
        value = float(form[name])
    except ValueError as exc:
        raise Open311Error(400, f"{name} is not a number") from exc
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise Open311Error(400, f"{name} must be between -{limit:g} and {limit:g}")
    return value


def reporter_of(form: dict[str, str]) -> Reporter | None:
    """Return the citizen behind the report, or None for an anonymous one (see the module docstring)."""
    device = _text(form, "device_id", 128, _OPENID)
    account = _text(form, "account_id", 128, _OPENID)
    if device and account and device != account:
        raise Open311Error(400, "device_id and account_id name different citizens")
    email = _text(form, "email", 254, _EMAIL)
    phone = _text(form, "phone", 32, _PHONE)
    family, given = _text(form, "last_name", 32), _text(form, "first_name", 32)
    name = "".join(p for p in (family, given) if p) or None
    openid = device or account
    if openid is None and email:
        openid = "email:" + email.lower()
    if openid is None and phone:
        openid = "phone:" + "".join(ch for ch in phone if ch.isdigit())
    if openid is None:
        if name:
            raise Open311Error(400, "a name needs device_id, email or phone to say who reported; omit it for anonymity")
        return None
    return Reporter(openid=openid, name=name, phone=phone)


def parse_submission(form: dict[str, str], settings: Settings, case_id: str, now: datetime) -> ReportCase:
    """Validate the spec's fields (service_code and a location required) and return the report to register."""
    code = _text(form, "service_code", 64)
    if code is None:
        raise Open311Error(400, "service_code is required")
    if settings.category(code) is None:
        raise Open311Error(400, f"service_code {code!r} was not found")
    if form.get("address_id", "").strip():
        raise Open311Error(400, "address_id is not supported here: send lat and long, or address_string")
    has_lat, has_long = bool(form.get("lat", "").strip()), bool(form.get("long", "").strip())
    if has_lat != has_long:
        raise Open311Error(400, "lat and long must be sent together")
    lat = _coordinate(form, "lat", 90) if has_lat else None
    lon = _coordinate(form, "long", 180) if has_long else None
    address = _text(form, "address_string", 256)
    if lat is None and address is None:
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    media = _text(form, "media_url", 1024, _URL)
    return ReportCase(
        case_id=case_id,
        category=code,
        reported_at=now,
        reporter=reporter_of(form),
        description=_text(form, "description", 4000) or "",
        lat=lat,
        lon=lon,
        coord_system="wgs84",  # the spec's lat/long are WGS-84
        address=address,
        photos=(media,) if media else (),
    )


def service_notice(report: ReportCase) -> str:
    """Return the Chinese notice sent back with a new request."""
    if report.reporter is None:
        return "已收到您的匿名举报；匿名举报不计积分。"
    return "已收到您的举报，指挥中心核实立案后计入积分。"
