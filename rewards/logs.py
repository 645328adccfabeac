"""Logging setup: one format, secrets never logged."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

# HTTP clients log every request URL (httpx at INFO, urllib3 under requests/wechatpy at DEBUG), and WeChat's API
# wants the app secret, OAuth codes and access tokens in the query string.
URL_LOGGERS = ("httpx", "urllib3.connectionpool")
_SECRET_IN_URL = re.compile(r"(secret|access_token|refresh_token|code)=[^&\s\"']*")


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message carries a secret in a URL, replacing the value by ***."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record with secrets in URLs replaced by ***."""
        message = record.getMessage()
        redacted = _SECRET_IN_URL.sub(r"\1=***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_redaction() -> None:
    """Add the redacting filter to the HTTP clients' loggers, once each."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def get_logger(name: str) -> logging.Logger:
    """Return the service's logger for a component."""
    return logging.getLogger(f"rewards.{name}")


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for CLI processes: text or JSON lines (REWARDS_LOG_FORMAT), request ids."""
    logging.basicConfig(level=level, handlers=[log_handler(fmt)])
    install_redaction()


# -- the access log: no secrets in query strings, no openids in paths --------------------------------------------
# uvicorn logs every request's path and query. OAuth answers carry `code`/`state`, WeChat's callback its
# signatures, nonce and echostr, Open311 may carry its api_key, the development sign-in an openid; the citizens' API
# has the openid in the path. Values are replaced by *** and openids in paths by a short digest (still linkable
# across lines, never the openid itself).
ACCESS_LOGGER = "uvicorn.access"
SECRET_QUERY_NAMES = frozenset(
    {"code", "state", "signature", "msg_signature", "echostr", "nonce", "api_key", "openid", "token", "access_token"}
)
_OPENID_IN_PATH = re.compile(r"^(/api/v1/citizens/)([^/?]+)")


def path_digest(value: str) -> str:
    """Return a short, stable stand-in for an identifier in a logged path."""
    return "h-" + hashlib.blake2b(value.encode(), digest_size=6).hexdigest()


def redact_target(target: str) -> str:
    """Return a request target (path?query, as logged) with secret query values and path openids masked."""
    path, sep, query = target.partition("?")
    path = _OPENID_IN_PATH.sub(lambda m: m.group(1) + path_digest(m.group(2)), path)
    if not sep:
        return path
    pairs = []
    for pair in query.split("&"):
        name, eq, _value = pair.partition("=")
        pairs.append(f"{name}=***" if eq and name.lower() in SECRET_QUERY_NAMES else pair)
    return path + "?" + "&".join(pairs)


class RedactAccessLog(logging.Filter):
    """Masks the request target of uvicorn's access-log records ('%s - "%s %s HTTP/%s" %d')."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the target argument of an access record; other records pass unchanged."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    """Add the access-log filter to uvicorn's access logger, once (each worker process calls this)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactAccessLog) for f in logger.filters):
        logger.addFilter(RedactAccessLog())


# -- request ids and the line format (REWARDS_LOG_FORMAT=text|json) ---------------------------------------------
# The request middleware (rewards.observability) binds each request's id in a context variable; RequestIdFilter,
# on every handler, copies it onto each record logged while the request runs (in its task, and in the worker threads
# its sync routes run in: they inherit the context). The formatters print only the record's final message, after
# the redaction filters above rewrote it: no raw arguments, no extra fields.
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_REQUEST_ID: ContextVar[str | None] = ContextVar("rewards_request_id", default=None)
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=/+-]{0,127}")  # uuids, trace ids, base64


def sane_request_id(value: str | None) -> str | None:
    """Return an incoming X-Request-ID worth keeping (1-128 letters, digits, `._:=/+-`), else None."""
    return value if value is not None and _SANE_REQUEST_ID.fullmatch(value) else None


def new_request_id() -> str:
    """Return a fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def bind_request_id(request_id: str) -> Token[str | None]:
    """Make `request_id` the current request's id (in this context); return the token that unbinds it."""
    return _REQUEST_ID.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    """Restore the request id bound before `bind_request_id` returned `token`."""
    _REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request id (None outside a request); put it on each handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Copy the current request id onto the record."""
        record.request_id = _REQUEST_ID.get()
        return True


def request_id_of(record: logging.LogRecord) -> str | None:
    """The request id a RequestIdFilter stamped on the record, or None."""
    value = record.__dict__.get("request_id")
    return value if isinstance(value, str) else None


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id]: message`; the id part only within a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format the line (before any traceback) with the request id when there is one."""
        request_id = request_id_of(record)
        if request_id is None:
            return super().formatMessage(record)
        return f"{record.asctime} {record.levelname} {record.name} [{request_id}]: {record.message}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, pid, request_id, exception (ASCII-escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = request_id_of(record)
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ASCII: a lone surrogate in a message cannot break the line, and Chinese text stays valid JSON
        return json.dumps(entry, ensure_ascii=True, default=str)


def formatter_for(fmt: str) -> logging.Formatter:
    """The formatter of a REWARDS_LOG_FORMAT value ("json", else text)."""
    return JsonFormatter() if fmt == "json" else TextFormatter()


def log_handler(fmt: str) -> logging.Handler:
    """A stderr handler in the given format that stamps request ids."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(fmt))
    handler.addFilter(RequestIdFilter())
    return handler


def server_log_config(fmt: str, level: str = "INFO") -> dict[str, Any]:
    """uvicorn's log_config for `rewards serve`: its loggers and the root (the service's) in one format.

    As uvicorn's default, its error log goes to stderr and its access log to stdout; the filters that other code
    adds to those loggers (the access-log redaction) are left in place: dictConfig here runs before the app loads.
    """
    formatter = "rewards.logs.JsonFormatter" if fmt == "json" else "rewards.logs.TextFormatter"
    handler = {"formatter": "line", "filters": ["request_id"], "class": "logging.StreamHandler"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "rewards.logs.RequestIdFilter"}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {
            "default": {**handler, "stream": "ext://sys.stderr"},
            "access": {**handler, "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": level},
    }
