"""SMS length: which encoding a text needs and how many segments it is billed as.

GSM-7 (GSM 03.38) carries 160 septets in one segment, 153 per segment once the text is
split (the rest is the concatenation header); characters of the extension table
(`^{}[]~|\\€` and form feed) take two septets and are never split across segments. Any
other character forces UCS-2: 70 UTF-16 code units in one segment, 67 when split, and a
character outside the Basic Multilingual Plane (most emoji) takes two units that stay
together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Dentrix Ascend's limit for a campaign text, after variables are filled in.
SMS_MAX_CHARACTERS = 260

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

Encoding = Literal["GSM-7", "UCS-2"]

_LIMITS: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class SmsLength:
    characters: int
    encoding: Encoding
    # Septets (GSM-7) or UTF-16 code units (UCS-2).
    units: int
    segments: int
    # Characters that forced UCS-2, in order of appearance (empty for GSM-7).
    non_gsm_characters: tuple[str, ...]


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def measure(text: str) -> SmsLength:
    non_gsm = tuple(
        dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION)
    )
    encoding: Encoding = "UCS-2" if non_gsm else "GSM-7"
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    single, multi = _LIMITS[encoding]
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        # Fill each segment greedily; a two-unit character that does not fit starts the next.
        segments, used = 1, 0
        for cost in costs:
            if used + cost > multi:
                segments += 1
                used = 0
            used += cost
    return SmsLength(
        characters=len(text),
        encoding=encoding,
        units=units,
        segments=segments,
        non_gsm_characters=non_gsm,
    )
