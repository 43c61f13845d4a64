"""Task tests run on the booking fixtures (a mirror, publishable keys)."""

from tests.booking.conftest import make_publishable_key, mirror  # noqa: F401
