"""Many ids at once, in the same format as `api.core.ids.new_id` (`pat_` + a lower-case
ULID), ~10x cheaper: a bulk sync of 10,000 rows would otherwise spend ~70 ms on ids.

A ULID is 48 bits of milliseconds then 80 random bits; the time part is encoded once per
batch and the random part with the C base32 codec, mapped to Crockford's alphabet."""

from __future__ import annotations

import base64
import os

from ulid import ULID

from api.core.ids import PREFIXES

_RFC4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD_LOWER = b"0123456789abcdefghjkmnpqrstvwxyz"
_TO_CROCKFORD = bytes.maketrans(_RFC4648, _CROCKFORD_LOWER)


def new_ids(kind: str, count: int) -> list[str]:
    head = f"{PREFIXES[kind]}_{str(ULID()).lower()[:10]}"
    randomness = os.urandom(10 * count)
    encoded = base64.b32encode(randomness).translate(_TO_CROCKFORD).decode()
    return [head + encoded[16 * i : 16 * i + 16] for i in range(count)]
