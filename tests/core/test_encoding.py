"""Accept-Encoding negotiation for pre-compressed bodies."""

from __future__ import annotations

import pytest

from api.core.encoding import accepts_gzip


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("*;q=0.1", True),
        (None, False),
        ("", False),
        ("identity", False),
        ("br", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*, gzip;q=0", False),
        ("*;q=0", False),
        ("gzip;q=abc", False),
    ],
)
def test_accepts_gzip(header, expected):
    assert accepts_gzip(header) is expected
