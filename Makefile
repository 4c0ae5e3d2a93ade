# Developer shortcuts. The README's two commands (scripts/demo.sh, scripts/test.sh) need no make.
PY := .venv/bin/python
export ESCPOS_CAPABILITIES_PICKLE_DIR := $(CURDIR)/.venv/escpos-cache

.PHONY: help bootstrap test lint bench bench-quick demo soak

help:
	@echo "make test         run the whole test suite (same as ./scripts/test.sh)"
	@echo "make lint         ruff"
	@echo "make bench        run every benchmark; report in bench/results/report.{md,json}"
	@echo "make bench-quick  small sizes, checks the benchmarks run"
	@echo "make demo         the appliance in demo mode (same as ./scripts/demo.sh)"
	@echo "make deb          Debian packages (amd64 + arm64) in dist/deb/ARCH, checked by lintian"
	@echo "make bundle       the offline USB bundles (packages + their Debian dependencies) in dist/"
	@echo "make arm64-check  install the arm64 bundle in an emulated Debian 12 arm64 root and run it (slow)"
	@echo "make soak         kill -9 the redemption path 500 times, then kill -9 counter/sync/central 500 times; check nothing tore; 5 min of ledger convergence turbulence"

bootstrap:
	./scripts/bootstrap.sh

test:
	./scripts/test.sh

lint: bootstrap
	.venv/bin/ruff check pos hardware firmware_config sync tests bench

bench: bootstrap
	$(PY) -m bench.run

bench-quick: bootstrap
	$(PY) -m bench.run --quick

demo:
	./scripts/demo.sh

soak: bootstrap
	EWARUNG_CRASH_ROUNDS=500 $(PY) -m pytest -q tests/integration/test_crash_redemption.py
	EWARUNG_SOAK_ROUNDS=500 flock /tmp/ewarung-pcscd.lock $(PY) -m pytest -q -s tests/integration/test_soak_processes.py
	EWARUNG_CONVERGENCE_SECONDS=300 $(PY) -m pytest -q tests/central/test_fleet_convergence.py

.PHONY: fuzz
fuzz: bootstrap  ## the fuzz tests at 10,000 inputs each (hypothesis profile "soak")
	EWARUNG_FUZZ_PROFILE=soak $(PY) -m pytest -q -p no:cacheprovider --hypothesis-show-statistics tests/fuzz

# Debian packages (packaging/debian): make deb-amd64 / deb-arm64 build one architecture.
.PHONY: deb deb-amd64 deb-arm64
deb: deb-amd64 deb-arm64

deb-amd64 deb-arm64: deb-%:
	./scripts/deb-build.sh $*
	lintian --fail-on error,warning build/deb/$*/*.changes

# The offline USB bundles (one self-installing file per architecture) in dist/.
.PHONY: bundle
bundle: deb
	./scripts/deb-bundle.sh amd64
	./scripts/deb-bundle.sh arm64

# Proof on arm64 under qemu (slow: see the time it prints); report in build/arm64-check/report.txt.
.PHONY: arm64-check
arm64-check:
	./scripts/arm64-check.sh
