"""What the demo practice is made of: CDT codes with typical fees, appointment types,
name pools (drawn once per seed from Faker), and the shares that shape a real practice."""

from __future__ import annotations

import random
from decimal import Decimal

from faker import Faker

# (code, description, fee)
EXAM = ("D0120", "Periodic oral evaluation", Decimal("65.00"))
NEW_PATIENT_EXAM = ("D0150", "Comprehensive oral evaluation", Decimal("110.00"))
PROPHY = ("D1110", "Prophylaxis - adult", Decimal("115.00"))
CHILD_PROPHY = ("D1120", "Prophylaxis - child", Decimal("85.00"))
PERIO_MAINTENANCE = ("D4910", "Periodontal maintenance", Decimal("165.00"))
BITEWINGS = ("D0274", "Bitewings - four radiographic images", Decimal("75.00"))
TREATMENT = [
    ("D2740", "Crown - porcelain/ceramic", Decimal("1250.00")),
    ("D2950", "Core buildup, including any pins", Decimal("285.00")),
    ("D3330", "Endodontic therapy, molar tooth", Decimal("1150.00")),
    ("D7140", "Extraction, erupted tooth or exposed root", Decimal("225.00")),
    ("D2392", "Resin-based composite - two surfaces, posterior", Decimal("245.00")),
    (
        "D4341",
        "Periodontal scaling and root planing - four or more teeth per quadrant",
        Decimal("265.00"),
    ),
    ("D6010", "Surgical placement of implant body: endosteal implant", Decimal("2100.00")),
]
# Crowns come with a core buildup, a root canal often with a crown.
TREATMENT_WEIGHTS = [22, 10, 8, 12, 30, 10, 8]
SURFACES = ["MO", "DO", "MOD", "OL", "MB"]
POSTERIOR_TEETH = [
    "2",
    "3",
    "4",
    "5",
    "12",
    "13",
    "14",
    "15",
    "18",
    "19",
    "20",
    "21",
    "28",
    "29",
    "30",
    "31",
]

# (external id, name, minutes, self-bookable)
APPOINTMENT_TYPES = [
    ("AT1", "Adult prophy", 60, True),
    ("AT2", "Perio maintenance", 60, False),
    ("AT3", "New patient exam", 90, True),
    ("AT4", "Crown prep", 90, False),
    ("AT5", "Root canal", 90, False),
    ("AT6", "Extraction", 60, False),
    ("AT7", "Emergency exam", 30, True),
]
AREA_CODES = ["512", "737", "312", "773", "630", "847", "214", "469", "713", "281"]

ACTIVE_SHARE = 0.80  # the rest: inactive, archived, a few deceased
PERIO_SHARE = 0.12  # patients on 3-4 month periodontal maintenance
LAPSED_SHARE = 0.28  # active patients who stopped coming (7 to 30 months ago)
TREATMENT_PLAN_SHARE = 0.18
HOUSEHOLD_SIZES = [1, 2, 3, 4, 5]
HOUSEHOLD_WEIGHTS = [44, 26, 15, 11, 4]
PREFERENCES = ["sms", "email", "phone", "none"]
PREFERENCE_WEIGHTS = [60, 25, 12, 3]


def name_pools(seed: int) -> tuple[list[str], list[str]]:
    """First and last names drawn once from Faker (seeded), then picked with random."""
    faker = Faker("en_US")
    faker.seed_instance(seed)
    firsts = sorted({faker.first_name() for _ in range(1500)})
    lasts = sorted({faker.last_name() for _ in range(2500)})
    shuffle = random.Random(seed)
    shuffle.shuffle(firsts)
    shuffle.shuffle(lasts)
    return firsts, lasts
