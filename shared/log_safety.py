"""Log lines that a client cannot forge: control characters are escaped in every message.

Both daemons log text that comes from outside (a user name at login, a request path in the
access log, a file name, an exception message). A newline in such text would start what looks
like a new log record (``...: eve\\nINFO forged``), and under systemd each line of standard error
is a journal entry of its own. :class:`SafeFormatter` makes one record one line:

* the formatted message (format string, arguments, and the record's fields) has every control
  character (C0, DEL, C1, and the Unicode line/paragraph separators) replaced by an escape:
  ``\\n``, ``\\r``, ``\\t``, else ``\\xNN`` / ``\\uNNNN``; backslashes are left as they are;
* an exception traceback or stack (code's own text, useful on several lines) stays multi-line,
  but every line after the record's first is indented by :data:`CONTINUATION` and has its other
  control characters escaped, so only a record's first line starts at column 0.

:func:`configure_logging` is how ``uunet-authority`` and ``uunet-edge`` set up logging; uvicorn
runs with ``log_config=None``, so its ``uvicorn.error`` and ``uvicorn.access`` records reach
the same root handler.
"""

from __future__ import annotations

import logging
import re
import sys
from types import TracebackType
from typing import TextIO

__all__ = ["CONTINUATION", "LOG_FORMAT", "SafeFormatter", "configure_logging", "escape_control"]

#: The record layout of both daemons.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Prefix of every traceback/stack line after a record's first line.
CONTINUATION = "    | "

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """``text`` with every control character (newlines included) written as an escape."""
    return _CONTROL.sub(_escape, text)


def _continuation(text: str) -> str:
    """Multi-line ``text`` (a traceback) with each line escaped and indented."""
    return "\n".join(
        CONTINUATION + _CONTROL_BUT_NEWLINE.sub(_escape, line) for line in text.split("\n")
    )


class SafeFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose records are one line each, plus indented tracebacks."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return escape_control(super().formatMessage(record))

    def formatException(self, ei: _ExcInfo) -> str:  # noqa: N802 - logging's name
        return _continuation(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return _continuation(super().formatStack(stack_info))


def configure_logging(level: str | int, stream: TextIO | None = None) -> logging.Handler:
    """Log records at ``level`` and above to ``stream`` (standard error) through
    :class:`SafeFormatter`; return the root handler that does it.

    Like :func:`logging.basicConfig`, this leaves a root logger that already has handlers
    alone (it then returns the first of them).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    return logging.getLogger().handlers[0]
