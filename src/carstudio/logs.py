"""Logging set-up that keeps the Replicate token out of every log line (the access log is
written by `web/access_log.py`)."""

from __future__ import annotations

import logging

from carstudio.config import Settings


class RedactToken(logging.Filter):
    """Replaces the token wherever it would appear in a formatted record."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token in message:
            record.msg = message.replace(self._token, "r8_***")
            record.args = None
        return True


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if settings.token:
        redact = RedactToken(settings.token)
        for handler in logging.getLogger().handlers:
            handler.addFilter(redact)
