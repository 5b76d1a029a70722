#!/usr/bin/env bash
# Usage: scripts/test.sh [extra go test flags]
#
# Runs the whole test suite with the integration tests enabled: the Python
# interop tests (OMSG_PYTHON) and the RabbitMQ tests (MESSAGING_RABBIT_URL).
# Expects the machine to be ready (scripts/setup.sh; `make test` runs both).
#
# The verbose go test output goes to $TEST_LOG; the terminal gets a digest:
# package results as they finish, the output of failed tests, then the count
# of integration tests that passed, and go test's per-package result lines.
# Exits non-zero when a test fails or when no integration test passed.
#
# Environment (defaults in brackets):
#   OMSG_PYTHON          [/usr/bin/python3]
#   MESSAGING_RABBIT_URL [rabbit://guest:guest@127.0.0.1:5672/]
#   TEST_PKGS            [./...]
#   TEST_TIMEOUT         [20m]
#   TEST_LOG             [.cache/test.log]
#   FUZZ_TIME            [5s] how long each fuzz target runs after the tests
#   GO                   [go]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export OMSG_PYTHON=${OMSG_PYTHON:-/usr/bin/python3}
export MESSAGING_RABBIT_URL=${MESSAGING_RABBIT_URL:-rabbit://guest:guest@127.0.0.1:5672/}
read -ra pkgs <<<"${TEST_PKGS:-./...}"
timeout=${TEST_TIMEOUT:-20m}
log=${TEST_LOG:-.cache/test.log}
mkdir -p "$(dirname "$log")"
# The reliability scenarios append their outcomes here (RELIABILITY.md).
export OMSG_RELIABILITY_OUT=${OMSG_RELIABILITY_OUT:-$ROOT/.cache/reliability.jsonl}
rm -f "$OMSG_RELIABILITY_OUT"

cmd=("${GO:-go}" test -race -shuffle=on -count=1 -timeout "$timeout" -v "$@" "${pkgs[@]}")
# Print the broker URL without its password.
shown_url=$(sed -E 's#([/,][^:/@,]*):[^@/,]*@#\1:***@#g' <<<"$MESSAGING_RABBIT_URL")
echo "OMSG_PYTHON=$OMSG_PYTHON MESSAGING_RABBIT_URL=$shown_url"
echo "${cmd[*]}"
echo "(full output in $log)"

start=$SECONDS
set +e
"${cmd[@]}" 2>&1 | tee "$log" | awk -f scripts/test-digest.awk
test_status=${PIPESTATUS[0]}
set -e
echo "go test finished in $((SECONDS - start))s with exit status $test_status"
echo

# A short run of every fuzz target: malformed input found since the
# corpus was last extended fails the suite.
fuzz_log=${log%.log}-fuzz.log
fuzz_status=0
echo "fuzzing every target for ${FUZZ_TIME:-5s} (output in $fuzz_log)"
FUZZ_MINIMIZE_TIME=0 bash scripts/fuzz.sh "${FUZZ_TIME:-5s}" >"$fuzz_log" 2>&1 || fuzz_status=$?
grep -E '^fuzz: FAIL|--- FAIL' "$fuzz_log" || true
echo

count_status=0
bash scripts/count-integration.sh "$log" || count_status=$?
# Suites that count their own cases print a line ending in "cases run: N
# passed, M failed"; show them.
grep -E '^[a-z ]*cases run: [0-9]+ passed, [0-9]+ failed' "$log" || true
grep -E '^fuzz targets run: ' "$fuzz_log" || echo "fuzz targets run: none (see $fuzz_log)"
scen_pass=$(grep -cE 'scenario S[0-9]+[a-z]?: PASS' "$log" || true)
scen_fail=$(grep -cE 'scenario S[0-9]+[a-z]?: FAIL' "$log" || true)
echo "fault scenarios run: $scen_pass passed, $scen_fail failed (outcomes in $OMSG_RELIABILITY_OUT)"

# go test's closing lines: failed tests, then one result line per package.
echo
grep -E '^ *--- FAIL: ' "$log" || true
grep -E $'^(ok  |FAIL|\\?   )\t' "$log" || true

if ((test_status != 0 || count_status != 0 || fuzz_status != 0)); then
	echo "FAIL"
	exit 1
fi
