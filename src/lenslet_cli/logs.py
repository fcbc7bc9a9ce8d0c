"""How ``lenslet serve`` logs: a level, and lines as text or as one JSON object each (for a log
collector), for lenslet's own loggers and uvicorn's alike."""

from __future__ import annotations

import datetime
import logging
from typing import Any, Literal

import orjson

__all__ = ["JsonLines", "LogFormat", "log_config"]

LogFormat = Literal["text", "json"]

#: Attributes every log record has; anything else on a record was passed as ``extra``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonLines(logging.Formatter):
    """One JSON object a line: ``{"time", "level", "logger", "message", ...extra}``."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        document: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


def log_config(level: str, form: LogFormat) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's loggers and lenslet's."""
    formatter: dict[str, Any] = (
        {"()": JsonLines}
        if form == "json"
        else {"format": "%(levelname)s:     %(name)s: %(message)s"}
    )

    def handler(stream: str) -> dict[str, Any]:
        return {"class": "logging.StreamHandler", "formatter": "lines", "stream": stream}

    def logger(to: str) -> dict[str, Any]:
        return {"handlers": [to], "level": level.upper(), "propagate": False}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lines": formatter},
        # as uvicorn's own: the request log on stdout, everything else on stderr
        "handlers": {"stderr": handler("ext://sys.stderr"), "stdout": handler("ext://sys.stdout")},
        "loggers": {
            "uvicorn": logger("stderr"),
            "uvicorn.error": logger("stderr"),
            "uvicorn.access": logger("stdout"),
            "lenslet": logger("stderr"),
        },
    }
