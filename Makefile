# Everything a user or CI runs goes through these targets; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# Every job is a subcommand of one command on PATH: `tritonclf --help` lists them.
CLF := $(VENV)/bin/tritonclf
MODEL ?= efficientnet_lite0
EXPORT_DIR ?= exports/$(MODEL)
REPOSITORY ?= model_repository
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002
# make serve's HTTP endpoint on loopback: one deeply nested JSON body kills Triton 2.51 (docs/SECURITY.md).
HTTP_ADDRESS ?= 127.0.0.1
SETUP_STAMP := $(VENV)/.setup-complete
PYTEST_ARGS ?=
# Classifier backend: auto (trt with a GPU and TensorRT, else python-ort) or one `tritonclf build --help` lists.
BACKEND ?= auto
# Preprocessing: pillow, or torch (batched JPEG decode and torch ops; nvJPEG on a GPU: docs/GPU.md).
PREPROCESS ?= pillow
# Export file formats: onnx, torchscript or both (BACKEND=torchscript needs the TorchScript file).
EXPORT_FORMAT ?= $(if $(filter torchscript,$(BACKEND)),both,onnx)
BUILD_ARGS ?=
# NVIDIA's Triton container tag is pinned once, in deploy/triton.env.
TRITON_TAG ?= $(shell sed -n 's/^TRITON_TAG=//p' deploy/triton.env)
IMAGE ?= triton-image-classifier:$(TRITON_TAG)
# onnxruntime-gpu in the image only for python-ort --device gpu (make image PYTHON_ORT=gpu).
PYTHON_ORT ?= cpu
S3_URL ?=
UPLOAD_ARGS ?=
BENCH_ARGS ?=
# make bench's second row: a heavier classifier (untrained weights: speed only) in its own repository.
BENCH_MODEL2 ?= resnet50
BENCH_EXPORT2 ?= exports/$(BENCH_MODEL2)
BENCH_REPOSITORY2 ?= benchmarks/repository-$(BENCH_MODEL2)
BENCH_ARGS2 ?= --concurrency 1,4,8 --protocol grpc
BENCH_RESULTS ?= benchmarks/results
# make bench's torch rows: MODEL with --preprocess torch, then with --backend torch, each in its own repository.
BENCH_TORCH_ARGS ?= --concurrency 1,4,8 --protocol grpc
PERF_ARGS ?=
COMPARE_ARGS ?=
# make analyze: NVIDIA's Model Analyzer in its own venv (numpy 2), the search's wall time in seconds.
ANALYZER_VENV ?= .venv-analyzer
ANALYZE_BUDGET_S ?= 1200
ANALYZE_ARGS ?=
# make ui: the page's port; UI_URL=HOST:PORT forwards to a running server's HTTP port instead of
# starting one on REPOSITORY.
UI_PORT ?= 8080
UI_URL ?=
UI_ARGS ?=
# make serve: the admin APIs need a key (TRITON_ADMIN_KEY, else this file's, generated once); SECURE=0 opens them.
SECURE ?= 1
ADMIN_KEY_FILE ?= .triton-admin-key
# What the GPU kit's repository is built with: torch preprocessing (nvJPEG) and the torch FP16 classifier.
# The Pillow/ONNX Runtime path needs onnxruntime-gpu on the GPU host (the project's GPU host has none):
# make gpu-kit GPU_KIT_BUILD="--backend python-ort --device gpu"
GPU_KIT_BUILD ?= --preprocess torch --backend torch --device gpu
GPU_KIT_ARGS ?=

.PHONY: help setup lock export repository engine preflight serve demo test test-long test-unit test-integration lint format bench clean
.PHONY: upload image compose-up lock-image perf-tools perf compare-models gpu-kit analyzer-tools analyze monitoring-tools
.PHONY: ui browser-tools

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(SETUP_STAMP) ## Create .venv with everything (server, training, clients, dev tools, the lab); fast when done
$(SETUP_STAMP): pyproject.toml lab/pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found; install Python 3.11 (with libpython3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[server,train,client,deploy,dev]" -e ./lab
	@touch $@

lock: setup ## Re-pin constraints.txt (every transitive package) from .venv after editing pyproject.toml
	{ echo "# Every installed package pinned: make setup installs with -c constraints.txt. Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable; } > constraints.txt

$(EXPORT_DIR)/model.json: $(SETUP_STAMP) src/tritonclf/training/torch2onnx.py src/tritonclf/training/torch2torchscript.py \
		src/tritonclf/training/export_check.py src/tritonclf/training/weights.py src/tritonclf/preprocess.py
	$(CLF) export --model $(MODEL) --output $(EXPORT_DIR) --format $(EXPORT_FORMAT)

export: $(EXPORT_DIR)/model.json ## Export the default model (MODEL=efficientnet_lite0) to ONNX + metadata

repository: export ## Build model_repository/ from the export (BACKEND: see tritonclf build --help; PREPROCESS=pillow|torch)
	$(CLF) build --export $(EXPORT_DIR) --repository $(REPOSITORY) --backend $(BACKEND) --preprocess $(PREPROCESS) \
		$(BUILD_ARGS)

engine: export ## TensorRT FP16 engine via trtexec in NVIDIA's Triton container (TRITON_TAG; needs Docker + GPU)
	$(CLF) engine --export $(EXPORT_DIR) --triton-tag $(TRITON_TAG)

preflight: setup ## Check the repository: configs, files and hashes, ensemble wiring, engine compatibility
	$(CLF) preflight --repository $(REPOSITORY)

SERVE_ARGS = --model-repository $(REPOSITORY) --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT) \
	--http-address $(HTTP_ADDRESS)
# Runs deploy/tritonserver-secure (the image's entry) with the key from TRITON_ADMIN_KEY, else from
# ADMIN_KEY_FILE, made once (mode 600). The key itself never appears in make's output. SECURE=0 runs
# the plain launcher, which says in one line that the admin APIs are open.
serve: preflight ## Preflight, then run tritonserver in the foreground (HTTP_PORT, ...; admin APIs behind a key unless SECURE=0)
ifneq ($(SECURE),0)
	@if [ -n "$${TRITON_ADMIN_KEY:-}" ]; then where=TRITON_ADMIN_KEY; else where=$(ADMIN_KEY_FILE); \
		[ -s $(ADMIN_KEY_FILE) ] || (umask 077 && $(PY) -c 'import secrets; print(secrets.token_hex(32))' > $(ADMIN_KEY_FILE)); fi; \
		echo "serve: shared-memory, trace and logging need the header admin-key (gRPC: triton-grpc-protocol-admin-key) = the key in $$where"
	TRITON_ADMIN_KEY="$${TRITON_ADMIN_KEY:-$$(cat $(ADMIN_KEY_FILE))}" PATH="$(abspath $(VENV))/bin:$$PATH" \
		deploy/tritonserver-secure $(SERVE_ARGS)
else
	$(VENV)/bin/tritonserver $(SERVE_ARGS)
endif

demo: repository ## Set up, build, start the server, classify the sample photos over gRPC and HTTP, stop
	$(CLF) demo --repository $(REPOSITORY) --model $(MODEL) \
		--http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

ui: $(if $(UI_URL),setup,repository) ## A page to try the model in a browser at http://127.0.0.1:UI_PORT/ (UI_URL=HOST:PORT: a running server)
	$(CLF) ui $(if $(UI_URL),--url $(UI_URL),--repository $(REPOSITORY)) --port $(UI_PORT) $(UI_ARGS)

# The page's browser tests (tests/integration/test_ui.py) drive Debian's Chromium through chromedriver.
browser-tools: ## Install chromium and chromium-driver with apt-get (as root) unless they are on PATH
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "browser-tools: no chromium and chromedriver, and no apt-get as root: the browser tests will be skipped"; fi

# The tiers: make test is what a change must pass (every job end to end, the real server);
# make test-long adds the runs that take minutes each. CI (.ci/run) runs both.
test: setup perf-tools browser-tools monitoring-tools ## tests/unit then tests/integration without the long runs: every job end to end, the real server
	$(PY) -m pytest -m "not long" $(PYTEST_ARGS)

test-long: setup perf-tools analyzer-tools browser-tools monitoring-tools ## The long runs: soak, fuzz, Model Analyzer, killed builds, client venv, whole train-demo, the GPU-host twin
	TRITONCLF_MODEL_ANALYZER=$(abspath $(ANALYZER_VENV))/bin/model-analyzer $(PY) -m pytest -m long $(PYTEST_ARGS)

test-unit: setup ## The fast loop: tests/unit only (no server, no export), under 2 minutes
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup perf-tools browser-tools monitoring-tools ## tests/integration without the long runs: the real server, real exports, real clients
	$(PY) -m pytest tests/integration -m "not long" $(PYTEST_ARGS)

# NVIDIA's 24.10 container runs the build tools and backend models on Python 3.10.
PY310_SOURCES := src build clients training deploy lab

lint: setup ## ruff (lint, format) and vermin: everything outside tests/ runs on Python 3.10+
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/vermin --target=3.10- --no-tips --violations -q $(PY310_SOURCES)

format: setup ## ruff: apply formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: repository $(BENCH_EXPORT2)/model.json ## Served vs limit, in-process, naive on a phone-photo mix: MODEL, resnet50, torch rows; reports in benchmarks/results/
	$(CLF) bench --repository $(REPOSITORY) --export $(EXPORT_DIR) --model $(MODEL) \
		--output-dir $(BENCH_RESULTS) $(BENCH_ARGS)
	$(CLF) build --export $(BENCH_EXPORT2) --repository $(BENCH_REPOSITORY2) --backend python-ort
	$(CLF) bench --repository $(BENCH_REPOSITORY2) --export $(BENCH_EXPORT2) --model $(BENCH_MODEL2) \
		--output-dir $(BENCH_RESULTS) $(BENCH_ARGS2)
	$(CLF) build --export $(EXPORT_DIR) --repository benchmarks/repository-preprocess-torch \
		--preprocess torch --backend python-ort
	$(CLF) bench --repository benchmarks/repository-preprocess-torch --export $(EXPORT_DIR) --model $(MODEL) \
		--output-dir $(BENCH_RESULTS) $(BENCH_TORCH_ARGS)
	$(CLF) build --export $(EXPORT_DIR) --repository benchmarks/repository-backend-torch --backend torch
	$(CLF) bench --repository benchmarks/repository-backend-torch --export $(EXPORT_DIR) --model $(MODEL) \
		--output-dir $(BENCH_RESULTS) $(BENCH_TORCH_ARGS)
	$(CLF) bench-summary $(BENCH_RESULTS)/latest-$(MODEL).json $(BENCH_RESULTS)/latest-$(BENCH_MODEL2).json \
		$(BENCH_RESULTS)/latest-$(MODEL)-torch+python-ort.json $(BENCH_RESULTS)/latest-$(MODEL)-pillow+torch.json \
		--output $(BENCH_RESULTS)/summary.md
	$(MAKE) bench-metrics

# Two builds of MODEL served side by side and measured in turns (docs/PERFORMANCE.md).
BENCH_AB_ARGS ?= --concurrency 8 --rounds 6 --duration-s 10
RESPONSE_CACHE_BYTES ?= 268435456
.PHONY: bench-metrics bench-cache

bench-metrics: export ## What the prediction and input metrics cost: metrics on vs off, in turns, one run
	$(CLF) bench-ab --export $(EXPORT_DIR) --name metrics --output-dir $(BENCH_RESULTS) \
		--variant "metrics on=--backend python-ort" --variant "metrics off=--backend python-ort --no-metrics" $(BENCH_AB_ARGS)

bench-cache: export ## The response cache on repeated uploads: cache off vs on, in turns, one run
	$(CLF) bench-ab --export $(EXPORT_DIR) --name cache --output-dir $(BENCH_RESULTS) \
		--variant "cache off=--backend python-ort" \
		--variant "cache on=--backend python-ort --response-cache-bytes $(RESPONSE_CACHE_BYTES)" $(BENCH_AB_ARGS)

$(BENCH_EXPORT2)/model.json: $(SETUP_STAMP) src/tritonclf/training/torch2onnx.py
	$(CLF) export --model $(BENCH_MODEL2) --random-weights --output $(BENCH_EXPORT2)

# Prometheus and promtool (Debian's prometheus package): the alerting rules' checks and the
# integration test that scrapes a real server. Installed with apt-get where missing.
monitoring-tools: ## Install prometheus + promtool with apt-get when they are missing (Debian/Ubuntu)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends prometheus; }
	@promtool --version | head -1

perf-tools: $(VENV)/bin/perf_analyzer ## Put perf_analyzer (from the tritonclient 2.41.1 wheel) in .venv/bin
$(VENV)/bin/perf_analyzer: $(SETUP_STAMP) lab/src/tritonclf_lab/bench/perf_tools_cli.py
	$(CLF) perf-tools
	@touch $@

perf: perf-tools repository ## perf_analyzer sweep on the ensemble and the classifier alone; CSVs in benchmarks/results/
	$(CLF) perf --repository $(REPOSITORY) --export $(EXPORT_DIR) --model $(MODEL) $(PERF_ARGS)

analyzer-tools: $(ANALYZER_VENV)/bin/model-analyzer ## Install NVIDIA's Model Analyzer (pinned) into .venv-analyzer
$(ANALYZER_VENV)/bin/model-analyzer: $(SETUP_STAMP) lab/src/tritonclf_lab/bench/analyzer-requirements.txt
	$(CLF) analyzer-tools --venv $(ANALYZER_VENV)
	@touch $@

analyze: analyzer-tools perf-tools export ## Model Analyzer on the classifier and the ensemble; reports in benchmarks/analyzer/; prints the build (ANALYZE_ARGS=--apply builds it)
	$(CLF) analyze --export $(EXPORT_DIR) --repository $(REPOSITORY) --budget-s $(ANALYZE_BUDGET_S) \
		--model-analyzer $(ANALYZER_VENV)/bin/model-analyzer $(ANALYZE_ARGS)

upload: setup ## Upload the repository to S3 storage, complete versions only (S3_URL=s3://[host:port/]bucket/path)
	@test -n "$(S3_URL)" || { echo "upload: set S3_URL, e.g. make upload S3_URL=s3://bucket/path (AWS_* variables for credentials)"; exit 1; }
	$(CLF) upload $(REPOSITORY) $(S3_URL) $(UPLOAD_ARGS)

image: ## Build the serving image: NVIDIA's Triton (deploy/triton.env) + our Python-backend packages (needs Docker; PYTHON_ORT=gpu adds onnxruntime-gpu)
	docker build --build-arg TRITON_TAG=$(TRITON_TAG) --build-arg PYTHON_ORT=$(PYTHON_ORT) -f deploy/Dockerfile -t $(IMAGE) .

compose-up: ## Serve model_repository/ in that image on this GPU host (needs Docker + NVIDIA Container Toolkit)
	TRITON_TAG=$(TRITON_TAG) PYTHON_ORT=$(PYTHON_ORT) docker compose -f deploy/compose.yaml up -d --build

lock-image: setup ## Re-pin deploy/requirements.txt and requirements-gpu.txt (hashes, the container's Python 3.10) from their .in files
	$(PY) deploy/lock_requirements.py

# Reliability (docs/RELIABILITY.md): the long runs of what make test-long runs for a minute.
SOAK_SECONDS ?= 1800
FUZZ_SECONDS ?= 3600
.PHONY: soak fuzz

soak: export ## Soak the real server at saturation with good and hostile images (SOAK_SECONDS; test-long runs 75)
	$(CLF) soak --export $(EXPORT_DIR) --seconds $(SOAK_SECONDS)

fuzz: setup ## Fuzz the preprocessing with hypothesis (FUZZ_SECONDS; test-long runs 60)
	$(CLF) fuzz --seconds $(FUZZ_SECONDS)

# Training (training/): fine-tune on a labelled image folder, export, serve, evaluate.
DEMO_NAME ?= digits
BENCH_TRAIN_ARGS ?=
.PHONY: train-demo bench-train

train-demo: repository ## Fine-tune EfficientNet-Lite0 on digits, export, build, serve, evaluate the served model
	$(CLF) train-demo --repository $(REPOSITORY) --name $(DEMO_NAME)

compare-models: setup ## The article's model table measured here (random weights): docs/MODELS.md + docs/models.png
	$(CLF) compare-models $(COMPARE_ARGS)

bench-train: setup ## Training images/s per strategy on this machine (BENCH_TRAIN_ARGS="--input-size 64")
	$(CLF) bench-train $(BENCH_TRAIN_ARGS)

clean: ## Remove generated exports and repository contents (keeps .venv)
	rm -rf exports benchmarks/repository-* gpu-kit
	find $(REPOSITORY) -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

gpu-kit: export ## gpu-kit/ (<= 60 MiB): carried Triton, numpy 1.26, libpython3.12, export + repositories, run.sh for a bare GPU host
	$(CLF) gpu-kit --export $(EXPORT_DIR) --output gpu-kit --build-args "$(GPU_KIT_BUILD)" $(GPU_KIT_ARGS)
