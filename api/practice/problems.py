"""Problems the practice domain raises (RFC 9457 via api.core.errors)."""

from __future__ import annotations

from datetime import datetime

from api.core.errors import Problem


class StaleData(Problem):
    """Work that depends on PMS data refuses to run on a mirror older than the tenant's
    threshold (a recall text to a patient who came in yesterday is worse than none)."""

    status = 409
    slug = "stale-data"
    title = "The practice data is too old"

    def __init__(
        self, location_id: str, data_as_of: datetime | None, threshold_minutes: int
    ) -> None:
        when = data_as_of.isoformat() if data_as_of else None
        detail = (
            f"Location {location_id} has never been synced from the PMS."
            if data_as_of is None
            else f"Location {location_id} holds PMS data as of {when}, older than the "
            f"tenant's threshold of {threshold_minutes} minutes."
        )
        super().__init__(
            detail + " Check the PMS bridge, then retry once it has synced.",
            extra={
                "location_id": location_id,
                "data_as_of": when,
                "threshold_minutes": threshold_minutes,
            },
        )


class BatchTooLarge(Problem):
    status = 413
    slug = "batch-too-large"
    title = "The batch has too many rows"


class LeaseConflict(Problem):
    status = 409
    slug = "writeback-lease-conflict"
    title = "This write-back is not held by that lease"
