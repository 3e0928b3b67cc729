"""Structured logs: one JSON object per line, personal data masked, secrets never present.

An event is logged with `log_event(logger, "transfer", user_id=1, ...)`: its fields
become keys of the line. Callers pass ids, amounts, outcomes and timings; names go
through `mask()`; passwords and PINs are never passed. Requests are logged without their
query string. Database errors carry no statement parameters (banking/db.py).
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

# uvicorn's most verbose level, below DEBUG.
TRACE = 5


def mask(name: str) -> str:
    """A name reduced to its first letter: 'Ravi' → 'R***'."""
    return f"{name[:1]}***" if name else ""


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    logger.info(event, extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event = getattr(record, "event", None)
        if event is not None:
            line["event"] = event
            line.update(getattr(record, "fields", {}))
        elif record.name == "uvicorn.access" and isinstance(record.args, tuple):
            client, method, path, _version, status = record.args
            line |= {
                "event": "http",
                "method": method,
                "path": str(path).split("?", 1)[0],
                "status": status,
                "client": client,
            }
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server: every logger, uvicorn's too, as JSON."""
    number = TRACE if level.lower() == "trace" else level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": number},
        "loggers": {
            name: {"handlers": [], "level": number, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
