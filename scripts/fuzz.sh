#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [FUZZTIME]
#
# Finds every fuzz target (func FuzzXxx(f *testing.F)) in the module's test
# files and runs each for FUZZTIME (default 30s), one at a time: go test
# -fuzz accepts a single target in a single package.
# FUZZ_MINIMIZE_TIME, when set, is passed as -fuzzminimizetime (0 for short
# runs: go test reports a run that ends while it minimises a new
# interesting input as failed with "context deadline exceeded").
# Exits non-zero if any target fails; new failing inputs are written by go
# test under the package's testdata/fuzz directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

fuzztime=${1:-${FUZZTIME:-30s}}

# One line per test file: "<import path> <file>".
# shellcheck disable=SC2016 # a Go template, not shell
mapfile -t files < <("${GO:-go}" list -e -f '{{$p := .ImportPath}}{{$d := .Dir}}{{range .TestGoFiles}}{{$p}} {{$d}}/{{.}}{{"\n"}}{{end}}{{range .XTestGoFiles}}{{$p}} {{$d}}/{{.}}{{"\n"}}{{end}}' ./...)

targets=()
for line in "${files[@]}"; do
	[[ -n $line ]] || continue
	pkg=${line%% *}
	file=${line#* }
	while IFS= read -r fn; do
		targets+=("$pkg $fn")
	done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*\*testing\.F\).*/\1/p' "$file")
done

if ((${#targets[@]} == 0)); then
	echo "fuzz: no fuzz targets found"
	exit 0
fi

echo "fuzz: ${#targets[@]} targets, ${fuzztime} each"
failed=()
for t in "${targets[@]}"; do
	pkg=${t%% *}
	fn=${t#* }
	echo "=== go test -run='^\$' -fuzz='^${fn}\$' -fuzztime=${fuzztime} ${pkg}"
	if ! "${GO:-go}" test -run='^$' -fuzz="^${fn}\$" -fuzztime="$fuzztime" ${FUZZ_MINIMIZE_TIME:+-fuzzminimizetime="$FUZZ_MINIMIZE_TIME"} "$pkg"; then
		failed+=("$pkg.$fn")
	fi
done

echo "fuzz targets run: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]} > 0)); then
	echo "fuzz: FAIL: ${failed[*]}"
	exit 1
fi
