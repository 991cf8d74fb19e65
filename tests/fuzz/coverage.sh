#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/fuzz/coverage.sh [BUILD_DIR] - source coverage of the code that reads
# peer bytes, reached by replaying each fuzz target's corpus.
#
# Builds BUILD_DIR (default build/fuzz-cov) with clang
# -fprofile-instr-generate -fcoverage-mapping, replays
# tests/fuzz/corpus/<target>/ through replay_<target> (and, if
# FUZZ_COV_EXTRA=DIR is set, DIR/<target>/ too: e.g. build/fuzz/corpus
# after ./build.sh fuzz), merges the profiles with llvm-profdata and prints
# llvm-cov's region, function and line coverage of the files each target
# is there for. Run from the repository root; needs clang and llvm (the
# Debian clang package brings llvm-profdata and llvm-cov).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
dir=${1:-build/fuzz-cov}
profdata=$(command -v llvm-profdata || command -v llvm-profdata-14)
cov=$(command -v llvm-cov || command -v llvm-cov-14)

# target: the files it covers
declare -A files=(
	[fuzz_wire]="transport/tcp/wire.c"
	[fuzz_handshake]="transport/tcp/handshake.c transport/tcp/auth.c"
	[fuzz_desc]="reactor/region.c"
	[fuzz_rdma_cm]="transport/rdma/common/cm.c"
	[fuzz_conn]="transport/tcp/conn.c transport/tcp/ep.c transport/tcp/wire.c reactor/region.c"
)
targets=(fuzz_wire fuzz_handshake fuzz_desc fuzz_rdma_cm fuzz_conn)

echo "+ cmake -S . -B $dir (clang, coverage)"
cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang \
	-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g -fprofile-instr-generate -fcoverage-mapping" \
	-DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" \
	-DPLX_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$dir" --target "${targets[@]/#/replay_}" >/dev/null

mkdir -p "$dir/cov"
for t in "${targets[@]}"; do
	inputs=("tests/fuzz/corpus/$t")
	if [[ -n "${FUZZ_COV_EXTRA:-}" && -d "$FUZZ_COV_EXTRA/$t" ]]; then
		inputs+=("$FUZZ_COV_EXTRA/$t")
	fi
	rm -f "$dir/cov/$t".*
	LLVM_PROFILE_FILE="$dir/cov/$t.profraw" \
		"$dir/tests/fuzz/replay_$t" "${inputs[@]}" 2>&1 | tail -1
	"$profdata" merge -sparse -o "$dir/cov/$t.profdata" \
		"$dir/cov/$t.profraw"
	echo "=== $t (${inputs[*]})"
	# shellcheck disable=SC2086
	"$cov" report "$dir/tests/fuzz/replay_$t" \
		-instr-profile="$dir/cov/$t.profdata" ${files[$t]} |
		awk 'NR == 1 || /\.c / { print }'
done
if [[ -n "${FUZZ_COV_FUNCS:-}" ]]; then
	# per-function detail, e.g. FUZZ_COV_FUNCS=fuzz_conn
	t=$FUZZ_COV_FUNCS
	# shellcheck disable=SC2086
	"$cov" report --show-functions "$dir/tests/fuzz/replay_$t" \
		-instr-profile="$dir/cov/$t.profdata" ${files[$t]}
fi
