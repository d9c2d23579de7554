"""Log levels that mean what they say: an operator that rides out an API server restart
should not leave ERROR lines behind."""
from __future__ import annotations

import logging


class RetriedRequests(logging.Filter):
    """kopf logs every request it will retry at ERROR ("Request attempt 2/9 failed; will
    retry: ..."), a level hard-coded in kopf. A retried request is a warning; the request
    that finally fails ("...; escalating") stays an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.name.startswith("kopf"):
            message = record.getMessage()
            if message.startswith("Request attempt ") and "; will retry: " in message:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install() -> None:
    """Apply the filter to every handler of the root logger (kopf's loggers propagate there)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RetriedRequests) for f in handler.filters):
            handler.addFilter(RetriedRequests())
