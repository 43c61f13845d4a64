"""Half-open integer ranges [low, high) over positions in the slot grid.

The search turns working hours and busy time into ranges of grid positions once per
resource (bisect on the sorted grid), then works on sorted range lists, so its cost grows
with the number of intervals, not with slots x busy intervals.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence

Range = tuple[int, int]


def positions_between(grid: Sequence[int], low: int, high: int) -> Range:
    """Grid positions whose instant t satisfies low <= t <= high."""
    return bisect_left(grid, low), bisect_right(grid, high)


def positions_strictly_between(grid: Sequence[int], low: int, high: int) -> Range:
    """Grid positions whose instant t satisfies low < t < high."""
    return bisect_right(grid, low), bisect_left(grid, high)


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, disjoint, non-touching ranges covering the same positions; empties dropped."""
    merged: list[Range] = []
    for low, high in sorted(ranges):
        if low >= high:
            continue
        if merged and low <= merged[-1][1]:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def subtract(keep: Sequence[Range], remove: Sequence[Range]) -> list[Range]:
    """Positions in `keep` and not in `remove`; both sorted and disjoint."""
    result: list[Range] = []
    cut = 0
    for low, high in keep:
        while cut < len(remove) and remove[cut][1] <= low:
            cut += 1
        position = low
        index = cut
        while index < len(remove) and remove[index][0] < high:
            cut_low, cut_high = remove[index]
            if cut_low > position:
                result.append((position, cut_low))
            position = max(position, cut_high)
            index += 1
        if position < high:
            result.append((position, high))
    return result


class MaskTimeline:
    """A bitmask per grid position, stored as constant runs.

    Bit n is set where member n is free: every member starts free everywhere and is
    cleared over its ranges (which must be merged, i.e. disjoint and non-touching).
    """

    __slots__ = ("_masks", "_starts")

    def __init__(self, member_count: int, busy_by_member: Sequence[Sequence[Range]]) -> None:
        events: list[tuple[int, int, bool]] = []
        for member, ranges in enumerate(busy_by_member):
            bit = 1 << member
            for low, high in ranges:
                events.append((low, bit, False))
                events.append((high, bit, True))
        events.sort()
        mask = (1 << member_count) - 1
        self._starts: list[int] = [0]
        self._masks: list[int] = [mask]
        for position, bit, freed in events:
            mask = mask | bit if freed else mask & ~bit
            if self._starts[-1] == position:
                self._masks[-1] = mask
            else:
                self._starts.append(position)
                self._masks.append(mask)

    def runs(self, low: int, high: int) -> Iterator[tuple[int, int, int]]:
        """(run_low, run_high, mask) for the constant runs covering [low, high)."""
        index = bisect_right(self._starts, low) - 1
        while low < high:
            run_end = self._starts[index + 1] if index + 1 < len(self._starts) else high
            run_high = min(run_end, high)
            yield low, run_high, self._masks[index]
            low = run_high
            index += 1
