# The two commands a newcomer needs: `make demo` and `make test`. Each sets up what it needs.
SHELL := /bin/bash
# The interpreter the environment is made from (`make test PYTHON=python3.12` for another): the system's
# own Python 3.11 when it has one that can make a virtual environment, else python3. A distribution
# builds its python3.11 as one static binary with its optimizations; pyenv builds (this machine's
# python3) load libpython as a shared library, and the same pytest run took 5m18 on one, 4m09 on the
# other (measured 2026-12-02). A .venv made from another interpreter is made again
PYTHON ?= $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 && echo /usr/bin/python3.11 || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Python keeps the bytecode of what it imports (in __pycache__/, ignored by git) even where the shell
# says not to: the suite runs in 4 processes and several subprocesses, and each would otherwise compile
# the project's modules and rewrite the tests' asserts again (5 of the 11 s of CPU a collection takes)
export PYTHONDONTWRITEBYTECODE :=
STAMP := $(VENV)/.installed-$(shell { cat requirements.lock pyproject.toml; echo "$(PYTHON)"; } | sha256sum | cut -c1-12)

.PHONY: demo test unit integration scenarios faults lint synth diagram docs docs-serve mutation bench bench-suite lock clean

$(STAMP): requirements.lock pyproject.toml
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print(sys.base_prefix)')" != "$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')" ]; then \
	  echo "Making $(VENV) again from $(PYTHON)..."; rm -rf $(VENV); fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the environment into $(VENV) (first run only)..."
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements.lock
	@$(PY) -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

## demo: deployments, an automatic and a manual rollback on the built-in local AWS, through the CLI
demo: $(STAMP)
	@$(PY) -m immutable_deploy.demo

## test: the linters (ruff, mypy), then the whole test suite, exactly as CI runs it, in pytest-xdist workers:
## one more than the cores (the real-time tests sleep; on 2 cores 3 workers and 2 took the same,
## measured 2026-12-01), or `make test WORKERS=1` for one process
## While the linters run (one core, 8 s on a clean checkout), every form of the stack the tests read is
## synthesized into its cache on the other (tests/warm.py: one node runtime, about 20 s on a clean
## checkout, instead of 10 s more in each test process that would synthesize), and, once the local AWS's
## stack is, the fault matrix's reference runs in a process beside it (15 s); once the linters pass,
## `python app.py` runs as the CDK CLI runs it (15 s), on the core they leave. About 37 s on a clean
## checkout before the first test (measured 2026-12-02)
WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: $(STAMP)
	@mkdir -p .build; { $(PY) -m compileall -q -x "lambdas/layer" app.py stacks statemachine lambdas immutable_deploy tests \
	  && $(PY) -m tests.warm; } > .build/warm.log 2>&1 & warm=$$!; \
	  $(MAKE) --no-print-directory lint; linted=$$?; \
	  if [ $$linted -eq 0 ]; then $(PY) -m tests.warm app > .build/warm-app.log 2>&1; fi; wait $$warm; \
	  if [ $$linted -ne 0 ]; then exit $$linted; fi
	@$(PY) -m pytest -n $(WORKERS) --dist worksteal --fault-matrix=check

## unit / integration / scenarios: one tier of the suite, for a fast loop (make test runs them all)
## unit: the domain logic with fakes, no AWS call and no network (seconds)
unit: $(STAMP)
	@$(PY) -m pytest tests/unit

## integration: the adapters, the logic and the handlers on moto; the local AWS itself, the stack and its
## IAM, the CLI against the local AWS
integration: $(STAMP)
	@$(PY) -m pytest tests/integration tests/localaws tests/infra tests/cli tests/packaging tests/mutation tests/test_offline.py

scenarios: $(STAMP)
	@$(PY) -m pytest tests/scenarios tests/faults

## faults: the fault matrix alone, one test per case (every mutating call's response lost, every describe
## throttled, every IAM action denied, a stop in every step of a deployment, of its compensation and of a
## rollback, spot interruptions, Lambda timeouts), each checked against the matrix's invariants, in
## pytest-xdist workers; then rewrites docs/fault-matrix.md and the summary in docs/reliability.md (about
## 2 min on 2 cores).
## `make test` runs every case too, and fails when they are not those the page lists
faults: $(STAMP)
	@$(PY) -m pytest tests/faults/test_every_case.py -n $(WORKERS) --dist worksteal --fault-matrix=write

## lint: ruff format --check, then ruff over the code and the tests (line length 120, pyflakes, pycodestyle, bugbear, complexity; pyproject.toml [tool.ruff]),
## then mypy (strict over lambdas/blue_green and lambdas/handlers, default checks elsewhere; [tool.mypy])
lint: $(STAMP)
	@$(VENV)/bin/ruff format --check --quiet .
	@$(VENV)/bin/ruff check --quiet .
	@$(VENV)/bin/mypy

## synth: synthesize the stack for a real account into cdk.out (bundles the dependencies layer with pip)
synth: $(STAMP)
	@$(PY) app.py

## diagram: regenerate docs/how-it-works.md's deploy state machine diagram from the synthesized definition
diagram: $(STAMP)
	@$(PY) -m immutable_deploy.diagram --write

## docs: regenerate the generated parts of docs/ (the diagram, the table of every role's grants), then build
## the documentation site into .build/site strictly (a broken link fails); `make docs-serve` serves it
docs: $(STAMP)
	@$(PY) -m immutable_deploy.diagram --write
	@$(PY) -m immutable_deploy.permissions_doc --write
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	@echo "The site is in .build/site (open .build/site/index.html)"

docs-serve: $(STAMP)
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

## mutation: the mutation score (mutmut over lambdas/blue_green/logic/, and the state machines); slow: hours on 2 cores, resumable
mutation: $(STAMP)
	@$(PY) -m tests.mutation.run

## bench: deployment pace on the local AWS (bench/pace.py): an ordinary deployment and a manual rollback beside
## AWS's own time and the seed's fixed 60 s polling, the detection lag of every wait, the ±25% variation model,
## state transitions, invocations, AWS calls and cost; writes docs/performance.md and docs/performance.json
## (about 3 minutes with the fleets of 300 and 1,000). `make test` checks that the page is what this writes
bench: $(STAMP)
	@$(PY) -m bench.pace --write

## bench-suite: the CPU of the suite's heaviest work (a sample of the fault matrix, deployments with a
## rollback) in this tree, or side by side with another revision, in turns: `make bench-suite AGAINST=HEAD~1`
## (the machine's speed varies by 5-10% between runs: judge a speed-up this way). Writes .build/bench-suite.json
bench-suite: $(STAMP)
	@$(PY) -m bench.suite_cpu $(if $(AGAINST),--against $(AGAINST))

## lock: resolve pyproject.toml's dependencies into requirements.lock (every package pinned, for every
## platform) and, at the same versions, the Lambda layer's requirements for the functions' platform,
## leaving out what the Lambda runtime brings. Existing pins are kept; `make lock UPGRADE=1` upgrades.
RUNTIME_PROVIDED := boto3 botocore jmespath s3transfer python-dateutil six urllib3
LOCK_FLAGS = --quiet --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: $(STAMP)
	@$(VENV)/bin/uv pip compile pyproject.toml --extra cdk --extra local --extra dev --universal --python-version 3.11 \
		--annotation-style line -o requirements.lock $(LOCK_FLAGS)
	@$(VENV)/bin/uv pip compile lambdas/layer/requirements.in -c requirements.lock --python-version 3.14 \
		--python-platform aarch64-manylinux_2_17 $(foreach p,$(RUNTIME_PROVIDED),--no-emit-package $(p)) \
		--no-annotate -o lambdas/layer/requirements.txt $(LOCK_FLAGS)

clean:
	rm -rf $(VENV) .build cdk.out .pytest_cache
