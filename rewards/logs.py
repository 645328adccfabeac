"""Logging setup: one format, secrets never logged."""

from __future__ import annotations

import logging
import re

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


def configure(level: str = "INFO") -> None:
    """Configure the root logger once for CLI processes."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()
