#!/usr/bin/env bash
# Usage: scripts/count-integration.sh LOG
#
# Reads a `go test -v` log and counts the integration tests that passed:
# TestInterop* (against the Python oslo.messaging peer) and TestRabbit* /
# TestIntegration* (against the RabbitMQ broker). go test reports top-level
# tests and subtests on separate "--- PASS" lines; each line counts once.
#
# Exits non-zero when no integration test passed, or when the log shows any
# failure (a "--- FAIL" line, or a package reported as FAIL).
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 LOG" >&2
	exit 2
fi
log=$1
[[ -r $log ]] || {
	echo "count-integration: cannot read $log" >&2
	exit 2
}

count() { grep -cE "$1" "$log" || true; }

interop=$(count '^ *--- PASS: TestInterop')
rabbit=$(count '^ *--- PASS: Test(Rabbit|Integration)')
subtests=$(count '^ *--- PASS: Test(Interop|Rabbit|Integration)[^ ]*/')
skipped=$(count '^ *--- SKIP: Test(Interop|Rabbit|Integration)')
failed_tests=$(count '^ *--- FAIL: ')
failed_pkgs=$(count $'^FAIL\t')
total=$((interop + rabbit))

printf 'integration tests passed: %d (interop: %d, rabbit: %d; top-level: %d, subtests: %d)\n' \
	"$total" "$interop" "$rabbit" "$((total - subtests))" "$subtests"

if ((skipped > 0)); then
	printf 'integration tests skipped: %d\n' "$skipped"
	grep -E '^ *--- SKIP: Test(Interop|Rabbit|Integration)' "$log" | sed 's/^ */    /' | sed -n 1,20p
fi

status=0
if ((interop == 0 || rabbit == 0)) && ((total > 0)); then
	if ((interop == 0)); then
		echo "warning: no TestInterop* test passed (is OMSG_PYTHON set to a python3 that imports oslo_messaging?)"
	else
		echo "warning: no TestRabbit*/TestIntegration* test passed (is MESSAGING_RABBIT_URL set and the broker up?)"
	fi
fi
if ((total == 0)); then
	echo "FAIL: no integration test passed; they need OMSG_PYTHON and MESSAGING_RABBIT_URL (run them with: make test)"
	status=1
fi
if ((failed_tests > 0 || failed_pkgs > 0)); then
	printf 'FAIL: failed tests: %d, failed packages: %d\n' "$failed_tests" "$failed_pkgs"
	status=1
fi
exit "$status"
