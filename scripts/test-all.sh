#!/usr/bin/env bash
# Runs every test: the C tests (normal build, then AddressSanitizer +
# UndefinedBehaviorSanitizer), then the Python package is installed and pytest
# runs last (its closing line is the verdict CI reads). Fails if any fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== C tests (build-test)"
if [ -d build-test ]; then meson setup --reconfigure build-test >/dev/null; else meson setup build-test -Dwerror=true >/dev/null; fi
meson compile -C build-test
meson test -C build-test --print-errorlogs

echo "== C tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan)"
if [ -d build-asan ]; then meson setup --reconfigure build-asan >/dev/null
else meson setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dinstall_lib=false >/dev/null; fi
meson compile -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs

echo "== Python package and pytest"
python3 -m pip install -q --disable-pip-version-check . 2>&1 | grep -v "Running pip as the 'root' user" || true
python3 -c "import wattmeter, sys; print('wattmeter', wattmeter.__version__, 'for', sys.executable)"
python3 -m pytest tests/python -q -ra
