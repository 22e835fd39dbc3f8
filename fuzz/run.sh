#!/bin/sh
# fuzz/run.sh — build the fuzz targets with libFuzzer and run each for a while.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS: time per target (default 60). TARGET: fuzz_pid_stat, fuzz_proc_files,
# fuzz_recording, fuzz_report_html, fuzz_reader_diff, fuzz_cuda_visible, fuzz_cgroup,
# fuzz_web_config, fuzz_windows, fuzz_requests, fuzz_llm (default: all). fuzz_report_html reads fuzz_recording's
# corpus (one input format). Environment: CC (default clang), JOBS
# (parallel fuzzing processes per target, default 1), FUZZ_OUT (build and
# output folder, default build-fuzz/ at the repository root; build*/ is
# ignored by git).
#
# No meson needed: each target is compiled straight from the sources with
# -fsanitize=fuzzer,address,undefined,float-cast-overflow (the one header
# meson generates, wattmeter_version.h, is written into FUZZ_OUT/include from
# VERSION, so a clean clone builds). New inputs that libFuzzer finds go to
# FUZZ_OUT/<target>/corpus, never into the committed fuzz/corpus/<target>
# (which is read as a second, seed-only folder); crashes go to
# FUZZ_OUT/<target>/crash-*. Worth committing to fuzz/corpus/ after a run:
# the crash reproducers once fixed, and a minimised corpus
# (./target -merge=1 fuzz/corpus/<target> FUZZ_OUT/<target>/corpus).
#
# Each target's last line says "== TARGET: clean, N execs/s" (libFuzzer's
# average_exec_per_sec); bench/fuzz.sh collects them into bench/results/.
#
# Exit status: 0 all ran clean, 1 a target crashed or failed to build,
# 2 no clang.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"fuzz_pid_stat fuzz_proc_files fuzz_recording fuzz_report_html fuzz_reader_diff fuzz_cuda_visible fuzz_cgroup fuzz_web_config fuzz_windows fuzz_requests fuzz_llm"}
cc=${CC:-clang}
jobs=${JOBS:-1}
out=${FUZZ_OUT:-$top/build-fuzz}

case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "$0: $cc not found. libFuzzer comes with clang:" >&2
	echo "    sudo apt-get install clang        # Debian/Ubuntu" >&2
	echo "    sudo dnf install clang compiler-rt # Fedora" >&2
	exit 2
fi

# Absolute: each target runs from its own folder (a relative FUZZ_OUT such
# as build-fuzz would name folders that do not exist from there).
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The header meson generates (include/wattmeter.h includes it), from VERSION.
mkdir -p "$out/include"
printf '#define WM_VERSION "%s"\n' "$(tr -d ' \n' <"$top/VERSION")" >"$out/include/wattmeter_version.h"

# float-cast-overflow: a NaN or huge double cast to an integer is undefined
# behaviour that -fsanitize=undefined does not catch on its own (html.c had one).
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined,float-cast-overflow
	-fno-sanitize-recover=undefined,float-cast-overflow
	-I$top/include -I$top/src -I$out/include"

# The sources each target needs. The /proc parsers need util.c only; the
# recording reader is linked against the whole core (everything under src/
# but the command, the Python binding and the proxy's server, which needs
# libcurl), so it keeps building as that code is split into files.
srcs_for() {
	case $1 in
	fuzz_pid_stat|fuzz_proc_files)
		echo "$top/src/base/util.c $top/src/procs/procfs.c" ;;
	fuzz_recording|fuzz_report_html|fuzz_reader_diff|fuzz_web_config|fuzz_windows|fuzz_requests)
		ls "$top"/src/*/*.c 2>/dev/null | grep -v -e /src/cli/ -e /src/proxy/proxy.c | tr '\n' ' ' ;;
	fuzz_llm)
		echo "$top/src/base/util.c $top/src/proxy/llm_parse.c" ;;
	fuzz_cuda_visible)
		echo "$top/src/base/util.c $top/src/sources/source.c $top/src/sources/nvml.c" ;;
	fuzz_cgroup)
		echo "$top/src/base/util.c $top/src/procs/cgroup.c" ;;
	*)
		return 1 ;;
	esac
}

libs_for() {
	case $1 in
	fuzz_llm)
		echo "$(pkg-config --cflags --libs jansson zlib) -lm" ;;
	fuzz_recording|fuzz_report_html|fuzz_reader_diff|fuzz_web_config|fuzz_windows|fuzz_requests)
		if ! pkg-config --exists jansson libmicrohttpd gnutls zlib; then
			echo "$0: jansson, libmicrohttpd, gnutls or zlib not found (apt-get install libjansson-dev libmicrohttpd-dev libgnutls28-dev zlib1g-dev pkg-config)" >&2
			return 1
		fi
		echo "$(pkg-config --cflags --libs jansson libmicrohttpd gnutls zlib) -lcrypt -lm -ldl -lpthread" ;;
	fuzz_cuda_visible)
		echo "-lm -ldl" ;;
	*)
		echo "" ;;
	esac
}

# The committed seeds of each target (fuzz_report_html shares a format).
corpus_for() {
	case $1 in
	fuzz_report_html|fuzz_reader_diff) echo fuzz_recording ;;
	*) echo "$1" ;;
	esac
}

# Inputs longer than this are not grown by mutation (committed seeds may be
# longer): a recording of a few lines reaches every branch of the reader, and
# parsing 90 kB per input cut the rate tenfold.
max_len_for() {
	case $1 in
	fuzz_recording|fuzz_report_html|fuzz_reader_diff) echo "-max_len=4096" ;;
	*) echo "" ;;
	esac
}

status=0
for t in $targets; do
	srcs=$(srcs_for "$t") || { echo "$0: unknown target $t" >&2; status=1; continue; }
	libs=$(libs_for "$t") || { status=1; continue; }
	dir=$out/$t
	mkdir -p "$dir/corpus"
	echo "== $t: building"
	# shellcheck disable=SC2086  # word splitting of the flag and file lists is wanted
	if ! $cc $cflags -o "$dir/$t" "$here/$t.c" $srcs $libs; then
		echo "== $t: BUILD FAILED"
		status=1
		continue
	fi
	echo "== $t: fuzzing for ${secs}s (new inputs: $dir/corpus)"
	# Reproducers of an earlier run are kept aside, not counted again.
	for f in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-*; do
		[ -e "$f" ] || continue
		mkdir -p "$dir/old" && mv "$f" "$dir/old/"
	done
	par=""
	[ "$jobs" -gt 1 ] && par="-jobs=$jobs -workers=$jobs"
	set +e
	# The first folder receives new inputs; the committed corpus only seeds.
	# Run from $dir: with -jobs, libFuzzer writes fuzz-N.log to the cwd.
	# shellcheck disable=SC2086
	(cd "$dir" && "./$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		$par $(max_len_for "$t") -print_final_stats=1 -artifact_prefix="$dir/" \
		"$dir/corpus" "$here/corpus/$(corpus_for "$t")") >"$dir/log.txt" 2>&1
	rc=$?
	set -e
	tail -n 12 "$dir/log.txt"
	if [ $rc -ne 0 ] || ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* >/dev/null 2>&1; then
		echo "== $t: FAILED (rc $rc); reproducers:"
		ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* 2>/dev/null || true
		echo "   replay one with: $dir/$t <file>"
		status=1
	else
		eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log.txt" | tail -n 1)
		echo "== $t: clean, ${eps:-?} execs/s"
	fi
done
exit $status
