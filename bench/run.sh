#!/usr/bin/env bash
# bench/run.sh — every wattmeter benchmark, one command.
#
#   bash bench/run.sh           # ~15 min: writes bench/results/<date>-<host>.md and .json
#   bash bench/run.sh --quick   # ~2-3 min smoke run: bench/results/<date>-<host>-quick.md
#
# Builds the CLI (release, build-bench/), bench/floor.c (cc -O2), and the
# peers' venv bench/.venv-peers (Zeus, CodeCarbon, carbontracker, eco2AI,
# perun at pinned versions, and wattmeter's own Python package) and
# AIPowerMeter at a pinned commit in bench/.peers, then runs bench/report.py
# (extra arguments go to it, e.g. --skip rate gpu). Needs root (the
# peers read a fake RAPL tree mounted over /sys/class/powercap inside a
# private mount namespace) and the network the first time (pip).
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS=("$@")

PY=${PYTHON:-python3}
if [ ! -f build-bench/build.ninja ]; then
	meson setup build-bench -Dbuildtype=release >/dev/null
fi
ninja -C build-bench wattmeter >/dev/null
# the tests' mock libnvidia-ml, for the GPU accuracy step (report.py --skip gpu leaves it out)
ninja -C build-bench tests/c/libmock_nvml.so >/dev/null 2>&1 ||
	echo "run.sh: could not build the mock libnvidia-ml (tests off or cmocka missing): the GPU step will say so" >&2
cc -O2 -Wall -o build-bench/floor bench/floor.c

# ---- the core before the rewrite, for the before/after cost per sample ----
# BEFORE_REF (default dc49a98, the last commit before the core rewrite) is
# built from `git archive` into build-bench/core-before/ (release, and with
# symbols for callgrind); skipped where the commit is not in the clone.
BEFORE_REF=${BEFORE_REF:-dc49a98}
OLD=build-bench/core-before
if git cat-file -e "$BEFORE_REF^{commit}" 2>/dev/null; then
	if [ "$(cat "$OLD/REF" 2>/dev/null)" != "$(git rev-parse "$BEFORE_REF")" ]; then
		rm -rf "$OLD" && mkdir -p "$OLD/src"
		git archive "$BEFORE_REF" | tar -x -C "$OLD/src"
		meson setup "$OLD/release" "$OLD/src" -Dbuildtype=release >/dev/null
		meson setup "$OLD/cg" "$OLD/src" -Dbuildtype=debugoptimized >/dev/null
		git rev-parse "$BEFORE_REF" >"$OLD/REF"
	fi
	ninja -C "$OLD/release" wattmeter >/dev/null
	ninja -C "$OLD/cg" wattmeter >/dev/null
fi

# ---- peers, pinned (bump here, nowhere else; the results file records what ran) ----
PEERS=(zeus==0.16.0 codecarbon==3.3.2 carbontracker==2.4.7 eco2ai==0.3.12 perun==1.0.0)
# eco2AI 0.3.12 writes 'N/A' into a float column, which pandas >= 3 refuses
EXTRA=("pandas<3" matplotlib)
AIPM_REPO=https://github.com/GreenAI-Uppa/AIPowerMeter
AIPM_COMMIT=fc099d108e3c16c2bebf4afaa2e194c9781a3ce0
VENV=bench/.venv-peers
FAILS=build-bench/peers-install-failures.txt
PINS="${PEERS[*]} ${EXTRA[*]}"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]; then
	rm -rf "$VENV"
	"$PY" -m venv "$VENV"
	: >"$FAILS"
	# one at a time, so that one that cannot be installed is recorded, not fatal
	for pkg in "${PEERS[@]}" "${EXTRA[@]}"; do
		"$VENV/bin/pip" install -q "$pkg" >"build-bench/pip-${pkg%%[=<]*}.log" 2>&1 ||
			echo "$pkg: $(tail -1 "build-bench/pip-${pkg%%[=<]*}.log")" >>"$FAILS"
	done
	# without ROCm, importing the amdsmi binding (pulled in by Zeus and CodeCarbon)
	# raises KeyError('libamd_smi.so') and takes Zeus down; without it they skip AMD GPUs
	"$VENV/bin/pip" uninstall -y -q amdsmi >/dev/null 2>&1 || true
	echo "$PINS" >"$VENV/.pins"
	rm -f "$VENV/.wattmeter-stamp"
fi
# AIPowerMeter is not on PyPI: its repository at a pinned commit, in bench/.peers
# (gitignored). AIPM_SRC may name a local clone or mirror (no network needed then).
AIPM=bench/.peers/AIPowerMeter
if [ "$(cat "$AIPM/COMMIT" 2>/dev/null)" != "$AIPM_COMMIT" ]; then
	rm -rf "$AIPM" && mkdir -p "$AIPM"
	SRC=${AIPM_SRC:-}
	if [ -z "$SRC" ]; then
		SRC=build-bench/aipm-clone
		[ -d "$SRC" ] || git clone -q "$AIPM_REPO" "$SRC" || echo "AIPowerMeter: git clone $AIPM_REPO failed" >>"$FAILS"
	fi
	if git -C "$SRC" archive "$AIPM_COMMIT" deep_learning_power_measure setup.py 2>/dev/null | tar -x -C "$AIPM"; then
		echo "$AIPM_COMMIT" >"$AIPM/COMMIT"
	else
		echo "AIPowerMeter: commit $AIPM_COMMIT not found in $SRC" >>"$FAILS"
	fi
fi
# wattmeter's Python package in the same venv, rebuilt when the sources change
STAMP=$(find src include python meson.build meson_options.txt pyproject.toml -type f -print0 |
	sort -z | xargs -0 sha1sum | sha1sum | cut -c1-16)
if [ "$(cat "$VENV/.wattmeter-stamp" 2>/dev/null)" != "$STAMP" ]; then
	"$VENV/bin/pip" install -q . >build-bench/pip-wattmeter.log 2>&1
	echo "$STAMP" >"$VENV/.wattmeter-stamp"
fi

exec "$PY" bench/report.py "${ARGS[@]}"
