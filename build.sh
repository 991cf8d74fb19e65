#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# build.sh - thin wrapper over CMake + Ninja for pollux. Every command it runs
# is echoed first (prefixed with "+"), so any step can be copied and rerun by
# hand. See docs/building.md for what each mode does and why.
#
#   ./build.sh [mode] [args...]      ./build.sh help   for the list of modes
#
# Environment:
#   CI=true or PLX_WERROR=1   configure with -DPLX_WERROR=ON
#   PLX_SKIP_DEPS=1           skip the Debian package check
#   PLX_TEST_JOBS=N           ctest parallelism (default 2)
#   PLX_CMAKE_ARGS="..."      extra arguments for every CMake configure
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

# Debian packages every mode needs. libclang-rt-14-dev carries clang's
# sanitizer runtimes (libclang_rt.asan/tsan/ubsan/fuzzer); without it,
# clang -fsanitize=... fails at link time.
PLX_DEB_PACKAGES=(
	cmake ninja-build gcc g++ clang libclang-rt-14-dev
	libmimalloc-dev libibverbs-dev libsodium-dev
	pkg-config clang-format iproute2 valgrind
)

# run CMD... - echo a command, shell-quoted, then run it.
run()
{
	local q
	printf -v q ' %q' "$@"
	echo "+${q}"
	"$@"
}

die()
{
	echo "build.sh: $*" >&2
	exit 1
}

check_deps()
{
	local pkg missing=()

	if [[ "${PLX_SKIP_DEPS:-0}" == 1 ]]; then
		echo "build.sh: PLX_SKIP_DEPS=1, not checking packages"
		return 0
	fi
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "build.sh: no dpkg-query (not Debian?); not checking packages." \
		     "Needed (Debian names): ${PLX_DEB_PACKAGES[*]}" >&2
		return 0
	fi
	for pkg in "${PLX_DEB_PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
			grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	echo "build.sh: missing Debian packages: ${missing[*]}"
	if [[ "$(id -u)" != 0 ]]; then
		echo "build.sh: not root; install them with:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	run apt-get update
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# Flags every configure gets.
common_cmake_args()
{
	CMAKE_ARGS=(-G Ninja)
	if [[ "${CI:-}" == true || "${PLX_WERROR:-0}" == 1 ]]; then
		CMAKE_ARGS+=(-DPLX_WERROR=ON)
	else
		CMAKE_ARGS+=(-DPLX_WERROR=OFF)
	fi
	if [[ -n "${PLX_CMAKE_ARGS:-}" ]]; then
		# Word splitting intended: a list of -D flags.
		# shellcheck disable=SC2206
		CMAKE_ARGS+=(${PLX_CMAKE_ARGS})
	fi
}

# configure_and_build DIR [CMAKE ARGS...]
configure_and_build()
{
	local dir=$1
	shift
	common_cmake_args
	run cmake -S . -B "$dir" "${CMAKE_ARGS[@]}" "$@"
	run cmake --build "$dir"
}

build_release()
{
	configure_and_build build/release -DCMAKE_BUILD_TYPE=Release
}

run_ctest()
{
	local dir=$1
	shift
	run ctest --test-dir "$dir" --output-on-failure \
		-j"${PLX_TEST_JOBS:-2}" "$@"
}

# Clang 14's sanitizer runtimes cannot map their shadow memory when the kernel
# randomises mmap with more than 28 bits (vm.mmap_rnd_bits = 32 is the default
# on some newer kernels): TSan dies with "unexpected memory mapping", ASan
# loops on DEADLYSIGNAL. Run the tests without ASLR in that case, or lower the
# sysctl as root when personality(2) is refused (some containers).
# (Writes /proc directly: procps is not in a minimal Debian image.)
SAN_PREFIX=()
sanitizer_aslr_workaround()
{
	local bits
	bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
	((bits > 28)) || return 0
	echo "build.sh: vm.mmap_rnd_bits=$bits is too high for clang 14 sanitizers"
	if setarch "$(uname -m)" -R true 2>/dev/null; then
		SAN_PREFIX=(setarch "$(uname -m)" -R)
	elif [[ "$(id -u)" == 0 ]] &&
		run sh -c 'echo 28 >/proc/sys/vm/mmap_rnd_bits' 2>/dev/null; then
		:
	else
		echo "build.sh: run 'sudo sysctl -w vm.mmap_rnd_bits=28' if the" \
		     "sanitizer tests crash at startup" >&2
	fi
}

sanitizer_mode()
{
	local dir=$1 san=$2
	shift 2
	configure_and_build "$dir" \
		-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DPLX_SANITIZE="$san"
	sanitizer_aslr_workaround
	if ((${#SAN_PREFIX[@]})); then
		run "${SAN_PREFIX[@]}" ctest --test-dir "$dir" --output-on-failure \
			-j"${PLX_TEST_JOBS:-2}" "$@"
	else
		run_ctest "$dir" "$@"
	fi
}

# Sources that lint covers: everything we write in C, minus build trees.
lint_sources()
{
	local d dirs=()
	for d in include reactor transport tests examples; do
		[[ -d "$d" ]] && dirs+=("$d")
	done
	((${#dirs[@]})) || return 0
	find "${dirs[@]}" \( -name 'build' -o -name 'build-*' -o -name '.*' \) \
		-prune -o -type f \( -name '*.c' -o -name '*.h' \) -print | sort
}

# Forbidden tokens in the library (reactor/, transport/), outside the one
# file allowed each. Comments and string literals are blanked first (line
# numbers kept), so contract comments may name what they forbid.
lint_forbidden()
{
	local f stripped hits line i bad=0 d dirs=()
	# Identifier boundary: not preceded by an identifier character, nor by
	# '.' or '->' (an ops-table member called free is not libc's free).
	local b='(^|[^_a-zA-Z0-9.>])'
	local names=() regexes=() exempt=()

	names+=("__sync builtin (use the reactor/atomic.h wrappers)")
	regexes+=("${b}__sync_[a-zA-Z_]")
	exempt+=("")

	names+=("raw __atomic builtin (use the reactor/atomic.h wrappers)")
	regexes+=("${b}__atomic_[a-zA-Z_]")
	exempt+=("reactor/atomic.h")

	names+=("C11 <stdatomic.h> (use the reactor/atomic.h wrappers)")
	regexes+=("${b}atomic_(load|store|exchange|compare_exchange|fetch_|thread_fence|signal_fence|flag_test_and_set|flag_clear)[a-z_]*[[:space:]]*\(|#[[:space:]]*include[[:space:]]*<stdatomic\.h>")
	exempt+=("reactor/atomic.h")

	names+=("libc allocation (only reactor/alloc.c allocates)")
	regexes+=("${b}(malloc|calloc|realloc|reallocarray|free|aligned_alloc|posix_memalign|memalign|valloc|pvalloc|strdup|strndup|asprintf|vasprintf)[[:space:]]*\(")
	exempt+=("reactor/alloc.c")

	names+=("printing (the library never prints; use the log callback)")
	regexes+=("${b}(printf|fprintf|vprintf|vfprintf|dprintf|vdprintf|puts|fputs|putchar|perror)[[:space:]]*\(")
	exempt+=("")

	for d in reactor transport; do
		[[ -d "$d" ]] && dirs+=("$d")
	done
	((${#dirs[@]})) || return 0
	echo "+ forbidden-token scan of ${dirs[*]}"
	while IFS= read -r f; do
		stripped=$(strip_c_comments <"$f")
		for i in "${!names[@]}"; do
			[[ "$f" == "${exempt[$i]}" ]] && continue
			hits=$(grep -nE -- "${regexes[$i]}" <<<"$stripped" | cut -d: -f1) || continue
			bad=1
			for line in $hits; do
				echo "$f:$line: forbidden: ${names[$i]}"
				echo "    $(sed -n "${line}p" "$f")"
			done
		done
	done < <(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) | sort)
	return $bad
}

# Blank out /* */ and // comments and "..." / '...' literals, keeping every
# newline so line numbers still match the file.
strip_c_comments()
{
	awk '
	BEGIN { st = 0 }  # 0 code, 1 block comment, 2 string, 3 char
	{
		out = ""; n = length($0)
		for (i = 1; i <= n; i++) {
			c = substr($0, i, 1); c2 = substr($0, i, 2)
			if (st == 1) {
				if (c2 == "*/") { st = 0; i++; out = out "  " }
				else out = out " "
			} else if (st == 2 || st == 3) {
				if (c == "\\") { out = out "  "; i++ }
				else if ((st == 2 && c == "\"") ||
					 (st == 3 && c == "\047")) {
					st = 0; out = out c
				} else out = out " "
			} else if (c2 == "/*") { st = 1; i++; out = out "  " }
			else if (c2 == "//") { break }
			else if (c == "\"") { st = 2; out = out c }
			else if (c == "\047") { st = 3; out = out c }
			else out = out c
		}
		# strings and chars do not span lines (no line continuations here)
		if (st >= 2) st = 0
		print out
	}'
}

# The standard plx_bench matrix of ./build.sh bench (docs/benchmarks.md,
# "TCP transport"): latency of every op, then bandwidth by window, both
# with pollux's and the floor's sockets on cubic (PLX_BENCH_CC); then the
# write bandwidth rows again with the system's congestion control, which
# on this project's machine is BBR and slows loopback streams with
# spurious retransmissions (docs/tcp.md, "Congestion control").
PLX_BENCH_CC=cubic
PLX_BENCH_LAT=(--tests lat --ops send,write,read,write_imm
	--sizes 8,4k,64k,1m --rounds 5)
# the ping-pong targets' sizes again, against a floor that sends each
# message behind a 48-byte header and reads it through a staging buffer,
# as pollux does: it splits pollux's gap into the framing's share and the
# library's own (docs/benchmarks.md, "Stop 17")
PLX_BENCH_LAT_FRAMED=(--tests lat --ops send,write --sizes 8,4k --rounds 5
	--floor-header 48 --floor-stage)
PLX_BENCH_BW=(--tests bw --ops write,send,read --sizes 8,4k,64k,1m,64m
	--window 1,16,256 --rounds 5)
PLX_BENCH_BW_SYS=(--tests bw --ops write --sizes 1m,64m --window 1,16,256
	--rounds 5)

# The libFuzzer targets (tests/fuzz/CMakeLists.txt).
PLX_FUZZ_TARGETS=(fuzz_wire fuzz_handshake fuzz_desc fuzz_rdma_cm fuzz_conn)

# mode_fuzz [SECONDS] - build build/fuzz (clang, -DPLX_FUZZ=ON) and run every
# target for SECONDS / number-of-targets seconds (at least 5 each) on a
# scratch copy of its committed corpus, so what the fuzzer adds does not
# dirty the tree. Fails if any target fails (crash, leak, broken invariant,
# timeout).
mode_fuzz()
{
	local secs=${1:-60} dir=build/fuzz per t scratch status=0 failed=()

	[[ "$secs" =~ ^[0-9]+$ ]] || die "usage: ./build.sh fuzz [SECONDS]"
	configure_and_build "$dir" \
		-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DPLX_FUZZ=ON -DPLX_BUILD_TESTS=OFF -DPLX_BUILD_EXAMPLES=OFF
	per=$((secs / ${#PLX_FUZZ_TARGETS[@]}))
	((per >= 5)) || per=5
	export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:detect_leaks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
	echo "+ export ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"
	sanitizer_aslr_workaround
	run mkdir -p "$dir/artifacts"
	for t in "${PLX_FUZZ_TARGETS[@]}"; do
		scratch=$dir/corpus/$t
		run mkdir -p "$scratch"
		run cp -R "tests/fuzz/corpus/$t/." "$scratch/"
		if ! run ${SAN_PREFIX[@]+"${SAN_PREFIX[@]}"} \
			"$dir/tests/fuzz/$t" -max_total_time="$per" \
			-timeout=10 -print_final_stats=1 \
			-artifact_prefix="$dir/artifacts/$t-" "$scratch"; then
			status=1
			failed+=("$t")
		fi
	done
	echo "build.sh: fuzz corpora (seeds + new inputs) are in $dir/corpus/<target>;" \
	     "add an input worth keeping to tests/fuzz/corpus/<target>/"
	if ((status)); then
		echo "build.sh: fuzz FAILED: ${failed[*]}; reproducers in $dir/artifacts/" \
		     "(replay one with $dir/tests/fuzz/<target> FILE)" >&2
	else
		echo "build.sh: fuzz passed (${PLX_FUZZ_TARGETS[*]}, ${per} s each)"
	fi
	return $status
}

# ./build.sh valgrind: every example, with arguments small enough for
# valgrind (it runs one thread at a time), one entry per example.
PLX_VALGRIND_RUNS=(
	"pingpong --iters 20"
	"serving_loop --requests 50"
	"kv_transfer --blocks 8 --block-size 4k"
	"plx_bench --quick --sizes 8,4k --iters 50 --time 0.01 --window 1,4"
	"ring_demo 1000"
	"plx_bench_reactor --quick --only idle"
	"plx_bench_stripe --smoke"
	"plx_bench_cuda --quick"
)

# mode_valgrind - build build/valgrind (-O1 -g, no sanitizers, internal
# allocations from libc so memcheck sees them: -DPLX_ALLOC_LIBC=ON) and run
# every example under memcheck. Fails on any memcheck error, a definite or
# indirect leak, a failing example, or an example with no entry above.
mode_valgrind()
{
	local dir=build/valgrind run_ name e found rc status=0 failed=()
	local vg=(valgrind -q --error-exitcode=1 --leak-check=full
		--errors-for-leak-kinds=definite,indirect
		--show-leak-kinds=definite,indirect --fair-sched=yes)

	configure_and_build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DPLX_ALLOC_LIBC=ON -DPLX_BUILD_TESTS=OFF
	for e in "$dir"/examples/*; do
		[[ -f "$e" && -x "$e" ]] || continue
		found=0
		for run_ in "${PLX_VALGRIND_RUNS[@]}"; do
			[[ "${run_%% *}" == "$(basename "$e")" ]] && found=1
		done
		((found)) || die "valgrind: example $(basename "$e") has no" \
			"entry in PLX_VALGRIND_RUNS"
	done
	for run_ in "${PLX_VALGRIND_RUNS[@]}"; do
		name=${run_%% *}
		# Word splitting intended: the example's arguments.
		# shellcheck disable=SC2086
		rc=0
		run timeout 600 "${vg[@]}" "$dir/examples/$name" \
			${run_#"$name"} || rc=$?
		case $rc in
		0) ;;
		77) echo "build.sh: $name: skipped (exit 77: no device here)" ;;
		*)
			status=1
			failed+=("$name")
			;;
		esac
	done
	if ((status)); then
		echo "build.sh: valgrind FAILED: ${failed[*]}" >&2
	else
		echo "build.sh: valgrind passed (${#PLX_VALGRIND_RUNS[@]} examples)"
	fi
	return $status
}

mode_lint()
{
	local status=0 files=()

	mapfile -t files < <(lint_sources)
	if ((${#files[@]})); then
		run clang-format --dry-run --Werror "${files[@]}" || status=1
	fi
	run sh tests/lint_headers.sh . || status=1
	lint_forbidden || status=1
	if ((status)); then
		echo "build.sh: lint FAILED" >&2
	else
		echo "build.sh: lint passed"
	fi
	return $status
}

usage()
{
	cat <<'EOF'
usage: ./build.sh [mode] [args...]

  release (default)  configure + build build/release (Release)
  debug              configure + build build/debug (Debug)
  run                release build, then run examples/pingpong: TCP
                     ping-pong over loopback, latency table by message size
                     (falls back to examples/ring_demo)
  test [ctest args]  build build/test (RelWithDebInfo, asserts on) and run
                     ctest, e.g. ./build.sh test -R ring
  asan [ctest args]  clang, -DPLX_SANITIZE=address,undefined, build/asan, ctest
  tsan [ctest args]  clang, -DPLX_SANITIZE=thread, build/tsan, ctest
  lint               clang-format check, public headers compile alone
                     (C11 and C++11), forbidden tokens in the library
  fuzz [SECONDS]     clang + libFuzzer (-DPLX_FUZZ=ON), build/fuzz; run each
                     fuzz target for SECONDS/targets s (default 60 in all,
                     at least 5 each) on a scratch copy of its corpus
  valgrind           build build/valgrind (-O1 -g, -DPLX_ALLOC_LIBC=ON) and
                     run every example under valgrind memcheck (leaks and
                     errors fail), with small arguments; about a minute
  bench              release build, then the standard benchmark matrix as
                     docs/benchmarks.md Markdown: plx_bench_reactor --md and
                     plx_bench (TCP latency and bandwidth with the raw-socket
                     floor, both on cubic; then write bandwidth on the
                     system's congestion control); about 3 minutes on 2
                     cores
  bench reactor|tcp [args]
                     run plx_bench_reactor or plx_bench with [args]
                     (other arguments go to plx_bench_reactor)
  soak [MINUTES]     build build/test (as test) and run tests/soak/plx_soak
                     for MINUTES (default 10): mixed traffic with random
                     faults; fails unless RSS and open fds stay flat after
                     warm-up (docs/reliability.md)
  rdma [ctest args]  build build/rdma (clang, ASan/UBSan) and run the RDMA
                     tests: test_rdma_vm boots a QEMU guest with soft-RoCE
                     and runs test_rdma_device and test_rdma_ep in it (root;
                     first run apt-installs qemu and downloads Debian's
                     kernel)
  install PREFIX     release build, then cmake --install to PREFIX
  clean              rm -rf build
  help               this text

Environment: CI=true or PLX_WERROR=1 turn on -DPLX_WERROR=ON;
PLX_SKIP_DEPS=1 skips the Debian package check; PLX_TEST_JOBS sets ctest -j
(default 2); PLX_CMAKE_ARGS adds configure flags.
EOF
}

mode=${1:-release}
(($#)) && shift

case "$mode" in
help | -h | --help)
	usage
	exit 0
	;;
clean)
	# Needs no packages.
	run rm -rf build
	exit 0
	;;
release | debug | run | test | asan | tsan | lint | fuzz | valgrind | bench | rdma | soak | install) ;;
*)
	usage >&2
	die "unknown mode '$mode'"
	;;
esac

check_deps

case "$mode" in
release)
	build_release
	;;
debug)
	configure_and_build build/debug -DCMAKE_BUILD_TYPE=Debug
	;;
run)
	build_release
	if [[ -x build/release/examples/pingpong ]]; then
		run build/release/examples/pingpong
	elif [[ -x build/release/examples/ring_demo ]]; then
		run build/release/examples/ring_demo
	else
		die "neither build/release/examples/pingpong nor ring_demo was built"
	fi
	;;
test)
	# RelWithDebInfo without -DNDEBUG: optimised, but assert() and the
	# owner-thread checks stay on.
	configure_and_build build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" \
		-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g"
	run_ctest build/test "$@"
	;;
soak)
	(($# <= 1)) && [[ "${1:-10}" =~ ^[0-9]+$ ]] ||
		die "usage: ./build.sh soak [MINUTES]"
	# the test build: ./build.sh test has usually built it already
	configure_and_build build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" \
		-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g"
	run build/test/tests/plx_soak $((${1:-10} * 60))
	;;
rdma)
	# The device tests need a verbs device; this host's kernel may have
	# none, so test_rdma_vm runs them in a soft-RoCE QEMU guest
	# (tests/rdma/run-rxe-vm.sh, docs/rdma.md). Root only.
	# Built with ASan/UBSan (leak checks on): ./build.sh test already
	# runs the guest with the plain build, so this covers the verbs paths
	# the sanitizer builds on this host can only skip.
	[[ "$(id -u)" == 0 ]] || die "rdma: needs root (apt-get, QEMU guest)"
	configure_and_build build/rdma \
		-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
		-DPLX_SANITIZE=address,undefined \
		-DPLX_WITH_RDMA=ON -DPLX_RDMA_VM_TEST=ON
	run_ctest build/rdma -R '^test_rdma_' "$@"
	;;
asan)
	export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:detect_leaks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
	echo "+ export ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"
	sanitizer_mode build/asan address,undefined "$@"
	;;
tsan)
	export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
	echo "+ export TSAN_OPTIONS=$TSAN_OPTIONS"
	sanitizer_mode build/tsan thread "$@"
	;;
lint)
	mode_lint
	;;
fuzz)
	(($# <= 1)) || die "usage: ./build.sh fuzz [SECONDS]"
	mode_fuzz "$@"
	;;
valgrind)
	(($# == 0)) || die "usage: ./build.sh valgrind"
	mode_valgrind
	;;
bench)
	build_release
	for b in plx_bench_reactor plx_bench; do
		[[ -x build/release/examples/$b ]] ||
			die "build/release/examples/$b was not built"
	done
	case "${1:-}" in
	"")
		# the standard matrix, printed as docs/benchmarks.md rows
		cc=(--cc "$PLX_BENCH_CC")
		grep -qw "$PLX_BENCH_CC" \
			/proc/sys/net/ipv4/tcp_available_congestion_control ||
			{
				echo "+ $PLX_BENCH_CC is not available:" \
					"the system's congestion control"
				cc=()
			}
		echo "+ system congestion control:" \
			"$(cat /proc/sys/net/ipv4/tcp_congestion_control)"
		run build/release/examples/plx_bench_reactor --md
		echo "+ load: $(cut -d' ' -f1-3 /proc/loadavg)"
		run build/release/examples/plx_bench --md "${PLX_BENCH_LAT[@]}" \
			"${cc[@]}"
		echo "+ load: $(cut -d' ' -f1-3 /proc/loadavg)"
		run build/release/examples/plx_bench --md \
			"${PLX_BENCH_LAT_FRAMED[@]}" "${cc[@]}"
		echo "+ load: $(cut -d' ' -f1-3 /proc/loadavg)"
		run build/release/examples/plx_bench --md "${PLX_BENCH_BW[@]}" \
			"${cc[@]}"
		echo "+ load: $(cut -d' ' -f1-3 /proc/loadavg)"
		run build/release/examples/plx_bench --md "${PLX_BENCH_BW_SYS[@]}"
		echo "+ load: $(cut -d' ' -f1-3 /proc/loadavg)"
		;;
	reactor)
		shift
		run build/release/examples/plx_bench_reactor "$@"
		;;
	tcp)
		shift
		run build/release/examples/plx_bench "$@"
		;;
	*)
		# as before plx_bench existed: arguments for the reactor bench
		run build/release/examples/plx_bench_reactor "$@"
		;;
	esac
	;;
install)
	(($# == 1)) || die "usage: ./build.sh install PREFIX"
	build_release
	run cmake --install build/release --prefix "$1"
	;;
esac
