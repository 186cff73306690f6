"""shared.log_safety: a logged newline cannot start a forged record; tracebacks stay readable."""

from __future__ import annotations

import logging

from shared.log_safety import CONTINUATION, escape_control


def test_escape_control_escapes_newlines_and_other_controls_only():
    assert escape_control("eve\nINFO forged\r\t\x1b[31m\x00\x85\u2028") == (
        "eve\\nINFO forged\\r\\t\\x1b[31m\\x00\\x85\\u2028"
    )
    assert escape_control("C:\\path é 👍") == "C:\\path é 👍"


def test_configured_logging_keeps_a_forged_record_on_the_real_line(daemon_log):
    logging.getLogger("authority_service.audit").info(
        "login by %s", "eve\n2024-01-01 00:00:00,000 INFO forged: admin logged in"
    )
    lines = daemon_log.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("login by eve\\n2024-01-01 00:00:00,000 INFO forged: admin logged in")


def test_configured_logging_indents_a_traceback_whose_message_has_a_newline(daemon_log):
    try:
        raise ValueError("bad name 'eve\nERROR forged'")
    except ValueError:
        logging.getLogger("edge_agent").exception("job %s: failed", "j1")
    first, *rest = daemon_log.getvalue().splitlines()
    assert first.endswith("ERROR edge_agent: job j1: failed")
    assert rest[0] == f"{CONTINUATION}Traceback (most recent call last):"
    assert len(rest) > 3 and all(line.startswith(CONTINUATION) for line in rest)
    assert f"{CONTINUATION}ERROR forged'" in rest  # still readable, but never at column 0
