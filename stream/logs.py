"""Logging: readable lines in a terminal, one JSON object a line in production.

Records are identified by `event_id` and `claim_id` (and Kafka coordinates) only: no
patient details, free text or code lists are ever put in a log record by the stage.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

CONTEXT_FIELDS = ("event_id", "claim_id", "route", "partition", "offset")


class TextFormatter(logging.Formatter):
    """`2026-04-06T14:03:11Z INFO  worker: decided 120 records  claim_id=... event_id=...`"""

    converter = time.gmtime  # type: ignore[assignment]  # UTC timestamps, whatever the host zone

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = "  ".join(
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        )
        return f"{line}  {context}" if context else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the stage (also handed to the Faust worker)."""
    formatter = "json" if fmt == "json" else "text"
    quiet = "WARNING" if level in ("INFO", "WARNING") else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        # Faust and the Kafka client narrate every rebalance step at INFO.
        "loggers": {
            "claims_stage": {"level": level},
            "faust": {"level": quiet},
            "stream.ops.sensor": {"level": quiet},  # Faust's service start/stop lines
            "mode": {"level": quiet},
            "aiokafka": {"level": quiet},
            "aiohttp.access": {"level": "WARNING"},
        },
    }


def configure(level: str, fmt: str) -> None:
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt))
