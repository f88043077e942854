# optimbench: `make demo` (whole study offline, minutes) and `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
PRESET ?=
# An override file on top of config.yaml (a preset by name, or any file), and the working directory.
CONFIG ?= $(if $(PRESET),config/presets/$(PRESET).yaml)
WORKDIR ?= .
CONFIG_ARGS := $(if $(CONFIG),--configfile $(abspath $(CONFIG)))
# From the working directory, as every job: an optimizer module of the study's folder imports there.
RESULTS = $(shell cd $(WORKDIR) 2>/dev/null && $(abspath $(BIN))/python -c "from optimbench.config import load; \
	import sys, os; print(os.path.join(os.getcwd(), load(sys.argv[1:])['results_dir']))" $(CURDIR)/config.yaml \
	$(abspath $(CONFIG)) 2>/dev/null)
# Snakemake reads --configfile files before any of our code and names neither file nor line: check them first.
# (From the working directory, where Snakemake resolves the config's relative paths.)
# `make study` creates the working directory (workdir); report and status read a study's, so it must exist.
IN_WORKDIR := cd $(WORKDIR) 2>/dev/null || { echo "WORKDIR=$(WORKDIR): no such folder (make study WORKDIR=$(WORKDIR) \
	creates it; make report and make status read the folder a study ran in)" >&2; exit 2; }
CHECK_CONFIG := $(IN_WORKDIR) && $(abspath $(BIN))/python -m optimbench.plan --check $(CURDIR)/config.yaml \
	$(if $(CONFIG),$(abspath $(CONFIG)))
SNAKEMAKE := $(BIN)/snakemake --snakefile $(CURDIR)/Snakefile --directory $(WORKDIR) \
	--profile $(CURDIR)/profiles/local --cores $(CORES)
# Everything downstream of the results (workflow/report-rules.txt): `make report` runs only these, and all of them.
REPORT_RULES := $(strip $(shell sed -e 's/[[:space:]]*[#].*//' $(CURDIR)/workflow/report-rules.txt))

.PHONY: help venv workdir demo compare study report status test lint mutation clean rehearsal calibrate

help:
	@echo "make demo    the whole study on offline data (digits, width 8, CPU), minutes; prints the report's path"
	@echo "make test    unit, workflow, SLURM and browser tests (a skipped SLURM/browser test fails under CI=true)"
	@echo "make compare the example optimizer (examples/optimizers/lion.py) against SGD, Adam and AdamW on the"
	@echo "             demo's offline problems, minutes (README: Compare your own optimizer)"
	@echo "make study   the article's full study (CIFAR-10 download; a GPU is advised)"
	@echo "make calibrate  optimbench's SGD, Momentum and Adam at DeepOBS's best settings against the published"
	@echo "             DeepOBS v1.1 runs (DEEPOBS_PROBLEM=quadratic_deep: minutes on a CPU; README: Published baselines)"
	@echo "make report  re-render tables, figures and report from existing results (PRESET=demo for the demo)"
	@echo "             (CONFIG=file.yaml adds any override file; WORKDIR=dir runs in another folder)"
	@echo "make status  where a study stands: each run's state, counts, stale results, projected end (PRESET=...)"
	@echo "make rehearsal  the demon-paper study at full model and data sizes, 2 steps a run, on CPU, then its test"
	@echo "make lint    ruff check, snakefmt --check, snakemake --lint (CI runs it before the tests)"
	@echo "make mutation  mutation testing (mutmut) of the numeric modules against their unit tests; not in CI"

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(MAKE) --no-print-directory study PRESET=demo

compare: venv
	$(MAKE) --no-print-directory study PRESET=compare

# A prerequisite, not the recipe's first line: make expands a recipe (the report's path) before running it.
workdir:
	mkdir -p $(WORKDIR)

study: venv | workdir
	$(CHECK_CONFIG)
	$(SNAKEMAKE) $(CONFIG_ARGS)
	@echo "Report: $(RESULTS)/report/study.html"

report: venv
	$(CHECK_CONFIG)
	@# Names the runs without results (and how to get them) instead of a MissingInputException.
	$(IN_WORKDIR) && $(abspath $(BIN))/python -m optimbench.plan $(CURDIR)/config.yaml $(abspath $(CONFIG)) --missing
	@# --forceall forces every job of these rules that this study has (--forcerun would make each rule a target:
	@# aggregate_tune and figures_tune too, when tune.enabled is false).
	$(SNAKEMAKE) $(CONFIG_ARGS) --allowed-rules $(REPORT_RULES) --forceall --rerun-triggers mtime
	@echo "Report: $(RESULTS)/report/study.html"

# Calibration before comparison (README: Published baselines): the preset is written from the published settings
# (optimbench.calibrate --preset) into the working directory, the study runs, and its calibration table is printed.
# PUBLISHED_DIR: a clone of fsschneider/DeepOBS_Baselines at v1.1 (offline); unset, its files are downloaded.
DEEPOBS_PROBLEM ?= quadratic_deep
PUBLISHED_DIR ?=
CALIBRATION := calibrate-$(DEEPOBS_PROBLEM).yaml
calibrate: venv | workdir
	$(IN_WORKDIR) && $(abspath $(BIN))/python -m optimbench.calibrate --preset $(DEEPOBS_PROBLEM) --out $(CALIBRATION) \
		$(if $(PUBLISHED_DIR),--dir $(abspath $(PUBLISHED_DIR)))
	$(MAKE) --no-print-directory study CONFIG=$(abspath $(WORKDIR))/$(CALIBRATION)
	$(IN_WORKDIR) && $(abspath $(BIN))/python -m optimbench.calibrate \
		--show results/calibrate-$(DEEPOBS_PROBLEM)/tables/calibration.parquet

# Reads the plan and the run folders only (optimbench.status): works while the study runs, never writes.
status: venv
	$(IN_WORKDIR) && $(abspath $(BIN))/python -m optimbench.status $(CURDIR)/config.yaml $(abspath $(CONFIG))

test: venv
	$(BIN)/python -m pytest

# The demon-paper study rehearsed before GPU hours (config/presets/rehearsal.yaml on top of demon-paper.yaml), then
# tests/workflow/test_rehearsal.py on its results (≤ 15 min on 2 cores).
REHEARSAL := config/presets/demon-paper.yaml config/presets/rehearsal.yaml
rehearsal: venv
	$(MAKE) --no-print-directory study CONFIG="$(REHEARSAL)"
	OPTIMBENCH_REHEARSAL_WORKDIR=$(abspath $(WORKDIR)) $(BIN)/python -m pytest -m rehearsal tests/workflow/test_rehearsal.py

# The package from this checkout's src/ (a venv shared between checkouts may point elsewhere).
lint: venv
	$(BIN)/ruff check
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PYTHONPATH=$(CURDIR)/src$(if $(PYTHONPATH),:$(PYTHONPATH)) $(BIN)/snakemake --lint

# Which mutants `make mutation` runs (mutmut names, globs): train.py's evaluation and epoch only.
MUTANTS ?= "optimbench.stats.*" "optimbench.aggregate.*" "optimbench.claims.*" "optimbench.performance.*" \
	"optimbench.cost.*" "optimbench.tune.*" "optimbench.search.*" "optimbench.specs.*" "optimbench.split.*" \
	"optimbench.optim.*" "optimbench.demon.*" "optimbench.report.*" "optimbench.sections.*" \
	"optimbench.device_data.*" "optimbench.checkpoints.*" \
	"optimbench.train.x_evaluate__*" "optimbench.train.x_train_epoch__*"
mutation: venv
	rm -rf mutants
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(CORES) $(MUTANTS)
	$(BIN)/mutmut results | grep -v ': not checked$$' || true  # the survivors (mutants outside MUTANTS are not run)

clean:
	rm -rf results/demo .snakemake mutants
