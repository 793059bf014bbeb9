"""What `make test` synthesizes beside the linters: every form of the stack the suite reads, into the
synth cache (immutable_deploy/localaws/synth.py), in this one process (the CDK's node runtime warms up
once: 12 s of CPU for the first synth, 2 s for each after it), so that no test process starts one; and
the fault matrix's reference runs (15 s of CPU), which every worker that collects the matrix reads.
The reference runs need only the local AWS's stack: once it is synthesized they run in a process of
their own (``python -m tests.warm references``) while this one synthesizes the other forms, which took
the 15 s off the time `make test` spends before its tests on a clean checkout.
A form a test synthesizes that is not listed here is still synthesized by that test, and kept.

``python -m tests.warm app`` runs ``python app.py`` as the CDK CLI runs it (tests/infra/test_synth.py's
eu-west-1 form), a process of its own (15 s of CPU on a clean checkout): `make test` runs it on the
other core once the linters have passed, while this step still synthesizes.

``python -m tests.warm [app]``; prints what it synthesized and how long each took."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Callable

from immutable_deploy.localaws.synth import cached_app_run, cached_assembly, cached_template, synthesize
from tests.faults import matrix
from tests.infra.conftest import EXAMPLE_CONTEXT, EXAMPLE_ENV
from tests.infra.test_synth import ENVIRONMENTS
from tests.infra.test_trigger import OPTED_OUT_CONTEXT, SENDERS_CONTEXT, SENDERS_ENV
from tests.scenarios.test_trigger_and_notifications import RELEASES_CONTEXT

FORMS = {
    "the local AWS's stack (cached_template)": lambda: cached_template(),
    "the example synth, bound (tests/infra)": lambda: cached_assembly(EXAMPLE_CONTEXT, EXAMPLE_ENV),
    "the example synth, environment-agnostic (test_synth.py)": lambda: cached_assembly(EXAMPLE_CONTEXT, {}),
    "the release bus admitting two accounts (test_trigger.py)": lambda: synthesize(
        context=SENDERS_CONTEXT, env=SENDERS_ENV
    ),
    "the rule on the default bus (test_trigger.py)": lambda: synthesize(context=OPTED_OUT_CONTEXT),
    "the rule on an existing bus (test_trigger_and_notifications.py)": lambda: synthesize(context=RELEASES_CONTEXT),
}
REFERENCES = {"the fault matrix's reference runs (tests/faults/matrix.py)": lambda: matrix.reference()}
APP_RUN = {
    "python app.py for eu-west-1 (test_synth.py)": lambda: cached_app_run(EXAMPLE_CONTEXT, ENVIRONMENTS["eu-west-1"]),
}


def _timed(name: str, form: Callable[[], object]) -> None:
    started = time.perf_counter()
    form()
    print(f"{time.perf_counter() - started:6.1f} s  {name}", flush=True)


def main(argv: list[str]) -> None:
    if argv in (["app"], ["references"]):
        for name, form in (APP_RUN if argv == ["app"] else REFERENCES).items():
            _timed(name, form)
        return
    (first, synth_first), *rest = FORMS.items()  # the local AWS's stack, which the reference runs use
    _timed(first, synth_first)
    references = subprocess.Popen([sys.executable, "-m", "tests.warm", "references"])
    try:
        for name, form in rest:
            _timed(name, form)
    finally:
        if references.wait() != 0:
            raise SystemExit(f"the fault matrix's reference runs failed (exit {references.returncode})")


if __name__ == "__main__":
    main(sys.argv[1:])
