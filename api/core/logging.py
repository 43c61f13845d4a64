"""Structured JSON logs (structlog); every line of a request carries its request id.

structlog renders through the standard library's logging, so lines from libraries
(uvicorn, arq, SQLAlchemy warnings) come out as the same JSON on the same stream as ours.
Level and renderer live in the one root handler, so calling this again (a second app in
the same process, the CLI) takes effect even for loggers structlog has already cached."""

from __future__ import annotations

import logging
import sys

import structlog

HANDLER_NAME = "chairfill"

# Applied to our events and to records from other libraries alike.
_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())


def log_handler() -> logging.Handler | None:
    """The handler `configure_logging` installed (tests point its stream at a buffer)."""
    return next((h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME), None)
