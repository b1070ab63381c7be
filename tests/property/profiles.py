"""How hard the property tests and the GraphQL fuzzing try.

By default (CI, `python3 dev.py test`) they are bounded and repeatable: a fixed number of
examples, derandomized (the same examples every run, so a red CI is a real regression and not a
lucky draw) and no example database (nothing is written to the tree). To hunt locally:

    ROPOS_HYPOTHESIS_PROFILE=long python3 dev.py test tests/property tests/fuzz

runs many times more examples, drawn afresh each run; a failure prints the shrunk steps and a
`@reproduce_failure` blob to replay it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, Verbosity, settings

PROFILE = os.environ.get("ROPOS_HYPOTHESIS_PROFILE", "ci")
PROFILES = ("ci", "long")
if PROFILE not in PROFILES:
    raise RuntimeError(f"ROPOS_HYPOTHESIS_PROFILE must be one of {PROFILES}, got {PROFILE!r}")
LONG = PROFILE == "long"

# Fixtures are set up once per test, not per example, on purpose (a served gateway, a database);
# and each example does real I/O, so it is slow by the health check's measure.
_SUPPRESSED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
]


def bounded(*, examples: int, steps: int | None = None, long_factor: int = 20) -> settings:
    """Settings for one test: `examples` (and `steps` per state machine run) in CI, many times
    that with the long profile."""
    factor = long_factor if LONG else 1
    options: dict[str, object] = {
        "max_examples": examples * factor,
        "deadline": None,
        "suppress_health_check": _SUPPRESSED,
        "database": None,
        "derandomize": not LONG,
        "print_blob": LONG,
        "verbosity": Verbosity.normal,
    }
    if steps is not None:
        options["stateful_step_count"] = steps * (2 if LONG else 1)
    if not LONG:
        # Explaining a failure re-runs it many times: in CI the shrunk example is enough.
        options["phases"] = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
    return settings(**options)  # type: ignore[arg-type]
