"""Parsing a Range header as RFC 9110 says: single ranges served, what may be ignored ignored,
a range past the end unsatisfiable."""

from __future__ import annotations

import pytest

from authority_service.api.byte_ranges import ByteRange, RangeNotSatisfiableError, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", ByteRange(0, 999)),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("bytes=-10", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        (" Bytes = 5 - 6 ", ByteRange(5, 6)),
        (None, None),
        ("bytes=0-1,4-5", None),  # several ranges: the whole file
        ("items=0-5", None),
        ("bytes=9-3", None),
        ("bytes=-", None),
        ("bytes=x-3", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1005", "bytes=-0"])
def test_parse_range_past_the_end_is_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, SIZE)
