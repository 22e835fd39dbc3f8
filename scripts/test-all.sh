#!/usr/bin/env bash
# Runs every test: the C tests (normal build, then AddressSanitizer +
# UndefinedBehaviorSanitizer + float-cast-overflow), a fuzz smoke of every
# libFuzzer harness (a few seconds each, WATTMETER_FUZZ_SECONDS; skipped
# without clang), then the Python package is installed and pytest runs last
# (its closing line is the verdict CI reads). Fails if any fails.
#
# Everything Python runs in the virtual environment .venv (made here with
# `python3 -m venv` if missing, as the README's install command does): meson
# >= 1.3 and ninja come from PyPI into it (Debian 12's own meson is 1.0), and
# so do pytest, pandas, matplotlib, mypy and the openai and ollama clients
# (the requests tests use the real ones). Nothing is installed into the system Python,
# which Debian and Ubuntu mark externally managed (PEP 668). WATTMETER_VENV
# names another environment.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${WATTMETER_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating the virtual environment $VENV"
  python3 -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# Only what is missing is fetched, so a second run needs no network.
if ! "$VPY" - <<'EOF' 2>/dev/null
import importlib.metadata as md, sys
need = {"meson": (1, 3), "ninja": None, "meson-python": (0, 14), "pytest": None, "pandas": None,
        "matplotlib": None, "mypy": None, "openai": None, "ollama": None}
for name, least in need.items():
    v = md.version(name)
    if least and tuple(int(x) for x in v.split(".")[:2]) < least:
        sys.exit(1)
EOF
then
  echo "== installing the test tools into $VENV (meson>=1.3, ninja, meson-python, pytest, pandas, matplotlib, mypy, openai, ollama)"
  "$VPY" -m pip install -q --disable-pip-version-check "meson>=1.3" ninja "meson-python>=0.14" pytest pandas matplotlib mypy \
    openai ollama
fi
# The LLM-serving tests (test_proxy.py, the integrations' tests): the real
# openai and ollama clients from PyPI, against tests/python/llm_server.py.
if ! "$VPY" -c "import openai, ollama" 2>/dev/null; then
  echo "== installing openai and ollama (the LLM clients of the proxy and integration tests)"
  "$VPY" -m pip install -q --disable-pip-version-check openai ollama
fi
# The framework callbacks' tests (test_integration_hf.py, _lightning.py): the
# real transformers on CPU torch (torch==2.13.0 is the CPU build here, ~190
# MB, installed once; the tests skip without them).
if ! "$VPY" -c "import torch, transformers, accelerate, lightning" 2>/dev/null; then
  echo "== installing torch==2.13.0 (CPU), transformers, accelerate, lightning for the callback tests (and llm_server.py's transformers backend)"
  "$VPY" -m pip install -q --disable-pip-version-check "torch==2.13.0" transformers accelerate lightning ||
    echo "== (not installed: the callback tests will skip)"
fi
PATH="$(cd "$VENV/bin" && pwd):$PATH"
export PATH

echo "== C tests (build-test)"
if [ -d build-test ]; then meson setup --reconfigure build-test >/dev/null; else meson setup build-test -Dwerror=true >/dev/null; fi
meson compile -C build-test
meson test -C build-test --print-errorlogs

echo "== C tests under AddressSanitizer + UndefinedBehaviorSanitizer + float-cast-overflow (build-asan)"
# float-cast-overflow (a NaN or out-of-range double cast to an integer) is
# not part of -fsanitize=undefined; gcc and clang both have it.
ASAN_SETUP=(-Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dinstall_lib=false
  -Dc_args=-fsanitize=float-cast-overflow -Dc_link_args=-fsanitize=float-cast-overflow)
if [ -d build-asan ]; then meson setup --reconfigure build-asan "${ASAN_SETUP[@]}" >/dev/null
else meson setup build-asan "${ASAN_SETUP[@]}" >/dev/null; fi
meson compile -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs

echo "== fuzz smoke: every libFuzzer harness for a few seconds (fuzz/run.sh, build-fuzz)"
# The committed corpora already run as meson tests (suite fuzz) in both
# builds above; this builds each harness with libFuzzer and lets it mutate.
# The longer run with its figures: python3 bench/fuzz.py.
if command -v clang >/dev/null 2>&1; then
  FUZZ_OUT=build-fuzz sh fuzz/run.sh "${WATTMETER_FUZZ_SECONDS:-5}"
else
  echo "   clang not found: fuzz smoke skipped (apt-get install clang)"
fi

echo "== Python package and pytest (in $VENV)"
"$VPY" -m pip install -q --disable-pip-version-check .
"$VPY" -c "import wattmeter, sys; print('wattmeter', wattmeter.__version__, 'for', sys.executable)"
"$VPY" -m pytest tests/python -q -ra
