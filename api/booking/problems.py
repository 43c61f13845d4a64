"""Problems the booking domain raises (RFC 9457 via api.core.errors)."""

from __future__ import annotations

from api.core.errors import Conflict


class BookingConflict(Conflict):
    """409 with a machine-readable `reason`: one of the engine's refusals (taken,
    outside_hours, notice, horizon, not_self_bookable, provider_not_allowed, off_grid,
    operatory_not_allowed) or hold_expired / hold_used / appointment_cancelled."""

    slug = "booking-conflict"
    title = "This slot cannot be booked"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason = reason
