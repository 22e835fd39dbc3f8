#!/usr/bin/env bash
# bench/run.sh — every wattmeter benchmark, one command.
#
#   bash bench/run.sh           # ~15 min: writes bench/results/<date>-<host>.md and .json
#   bash bench/run.sh --quick   # ~2-3 min smoke run: bench/results/<date>-<host>-quick.md
#
# Builds the CLI (release, build-bench/), bench/floor.c (cc -O2), and the
# peers' venv bench/.venv-peers (CodeCarbon, Zeus, carbontracker, eco2AI and
# wattmeter's own Python package), then runs bench/report.py. Needs root (the
# peers read a fake RAPL tree mounted over /sys/class/powercap inside a
# private mount namespace) and the network the first time (pip).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=()
[ "${1:-}" = "--quick" ] && QUICK=(--quick)

PY=${PYTHON:-python3}
if [ ! -f build-bench/build.ninja ]; then
	meson setup build-bench -Dbuildtype=release >/dev/null
fi
ninja -C build-bench wattmeter >/dev/null
cc -O2 -Wall -o build-bench/floor bench/floor.c

VENV=bench/.venv-peers
FAILS=build-bench/peers-install-failures.txt
if [ ! -x "$VENV/bin/python" ]; then
	"$PY" -m venv "$VENV"
	: >"$FAILS"
	# one at a time, so that one that cannot be installed is recorded, not fatal
	for pkg in codecarbon zeus-ml carbontracker eco2ai; do
		"$VENV/bin/pip" install -q "$pkg" >"build-bench/pip-$pkg.log" 2>&1 ||
			echo "$pkg: $(tail -1 "build-bench/pip-$pkg.log")" >>"$FAILS"
	done
	# eco2AI 0.3.12 writes 'N/A' into a float column, which pandas >= 3 refuses
	"$VENV/bin/pip" install -q "pandas<3" >/dev/null 2>&1 || echo "pandas<3: not installed" >>"$FAILS"
	# without ROCm, importing the amdsmi binding (pulled in by Zeus and CodeCarbon)
	# raises KeyError('libamd_smi.so') and takes Zeus down; without it they skip AMD GPUs
	"$VENV/bin/pip" uninstall -y -q amdsmi >/dev/null 2>&1 || true
fi
# wattmeter's Python package in the same venv, rebuilt when the sources change
STAMP=$(find src include python meson.build meson_options.txt pyproject.toml -type f -print0 |
	sort -z | xargs -0 sha1sum | sha1sum | cut -c1-16)
if [ "$(cat "$VENV/.wattmeter-stamp" 2>/dev/null)" != "$STAMP" ]; then
	"$VENV/bin/pip" install -q . >build-bench/pip-wattmeter.log 2>&1
	echo "$STAMP" >"$VENV/.wattmeter-stamp"
fi

exec "$PY" bench/report.py "${QUICK[@]}"
