"""Logging set-up that keeps the Replicate token out of every log line, and the access log to
answers that say something."""

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


def worth_an_access_line(record: logging.LogRecord) -> bool:
    """Every answer but a 304, a poll that found nothing new: open pages poll their batch
    every second or two, so those lines would be most of the log, and writing them a fifth
    of what such an answer costs the server."""
    return not (isinstance(record.args, tuple) and record.args[-1:] == (304,))


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").addFilter(worth_an_access_line)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if settings.token:
        redact = RedactToken(settings.token)
        for handler in logging.getLogger().handlers:
            handler.addFilter(redact)
