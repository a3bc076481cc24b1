"""Standard codes: unit-grid cells (15 digits), units, and street components (16 digits).

Code tables are versioned data files in ``tables/``, not enums: a deployment can ship the
table of its own standard edition (GB/T 30428.2-2013, GB/T 47678.5-2026, ...).
"""
