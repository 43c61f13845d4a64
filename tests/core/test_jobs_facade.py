"""The jobs facade keeps pushing through a live queue whatever order app instances and
workers in one process stop in (a stopped one must not leave the others without one)."""

from __future__ import annotations

from api.core import jobs


class _Queue(jobs.JobQueue):
    def __init__(self, name: str) -> None:  # no Redis needed to track which queue is active
        self.name = name


def test_stopping_in_any_order_leaves_the_newest_live_queue_active():
    before = jobs.current_queue()
    first, second = _Queue("first"), _Queue("second")
    jobs.activate(first)
    jobs.activate(second)
    assert jobs.current_queue() is second
    jobs.deactivate(first)  # the older one stops first
    assert jobs.current_queue() is second
    jobs.deactivate(second)
    assert jobs.current_queue() is before
    jobs.deactivate(second)  # stopping twice is harmless
    assert jobs.current_queue() is before
