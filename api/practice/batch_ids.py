"""Many ids at once, in the same format as `api.core.ids.new_id` (`pat_` + a lower-case
ULID), ~20x cheaper: a bulk sync of 10,000 rows would otherwise spend ~70 ms on ids.

A ULID is 48 bits of milliseconds then 80 random bits, 26 characters of Crockford's
base32. The time part is encoded once per batch; the random part is 16 random bytes a
row, each mapped by one C `bytes.translate` to the character its low 5 bits name (256
is a multiple of 32, so every character stays equally likely: 16 x 5 = 80 random bits)."""

from __future__ import annotations

import os

from ulid import ULID

from api.core.ids import PREFIXES

_CROCKFORD_LOWER = b"0123456789abcdefghjkmnpqrstvwxyz"
_LOW_FIVE_BITS = bytes(_CROCKFORD_LOWER[b & 31] for b in range(256))


def new_ids(kind: str, count: int) -> list[str]:
    head = f"{PREFIXES[kind]}_{str(ULID()).lower()[:10]}"
    randomness = os.urandom(16 * count).translate(_LOW_FIVE_BITS).decode("ascii")
    return [head + randomness[16 * i : 16 * i + 16] for i in range(count)]
