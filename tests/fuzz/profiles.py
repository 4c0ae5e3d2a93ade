"""Hypothesis settings profiles for the fuzz tests.

"ci" (the default): 500 examples a test, a few seconds each. "soak": 10,000 a test, chosen with
EWARUNG_FUZZ_PROFILE=soak (`make fuzz`). The profile is applied per test with @FUZZ, never loaded
globally, so the property tests elsewhere keep their own counts. Run with
`--hypothesis-show-statistics` to see how many inputs each test really tried.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, derandomize=False, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=500, **_COMMON)
settings.register_profile("soak", max_examples=10_000, **_COMMON)

PROFILE = os.environ.get("EWARUNG_FUZZ_PROFILE", "ci")
FUZZ = settings.get_profile(PROFILE)
