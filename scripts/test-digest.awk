# Reads the output of `go test -v` (several packages, stdout and stderr merged)
# and prints a readable digest as it goes:
#   - the per-package result lines (ok, FAIL, "?   ... [no test files]");
#   - for every failed test, its own output and its "--- FAIL" line;
#   - panics, build errors, and output of tests still running when a package
#     failed (a timeout), or printed outside any test (TestMain);
#   - the shuffle seed of every failed package.
# Output of passing tests is dropped; the full log is kept elsewhere.
# POSIX awk (mawk and gawk).

function out(s) {
	print s
	fflush()
}

function keep(name, line) {
	n[name]++
	buf[name, n[name]] = line
	if (!(name in started)) {
		started[name] = 1
		order[++norder] = name
	}
}

function flush_test(name, i) {
	for (i = 1; i <= n[name]; i++) {
		out(buf[name, i])
		delete buf[name, i]
	}
	n[name] = 0
}

function drop_test(name, i) {
	for (i = 1; i <= n[name]; i++)
		delete buf[name, i]
	n[name] = 0
	finished[name] = 1
}

function reset_package(i) {
	for (i = 1; i <= norder; i++)
		drop_test(order[i])
	norder = 0
	delete order
	delete started
	delete finished
	delete failing
	cur = ""
	panicking = 0
	building = 0
	norphan = 0
	delete orphan
}

# report_leftovers prints what a failed package printed outside any test,
# and the output of its tests that never finished.
function report_leftovers(i, name) {
	if (norphan > 0) {
		out("--- output outside any test:")
		for (i = 1; i <= norphan; i++)
			out(orphan[i])
	}
	norphan = 0
	for (i = 1; i <= norder; i++) {
		name = order[i]
		if (!(name in finished) && n[name] > 0) {
			out("--- unfinished: " name)
			flush_test(name)
		}
	}
}

# test_name returns the test name that follows the marker in fields.
function test_name(line, f) {
	split(line, f, /[ \t]+/)
	return (f[1] == "") ? f[4] : f[3]
}

BEGIN {
	cur = ""
	seed = ""
}

/^-test\.shuffle [0-9]+$/ {
	reset_package()
	seed = $2
	next
}

/^=== (RUN|PAUSE|CONT|NAME) / {
	building = 0
	if (panicking) {
		out($0)
		next
	}
	cur = $3
	if ($2 == "RUN" && !(cur in started)) {
		started[cur] = 1
		order[++norder] = cur
		n[cur] = 0
	}
	next
}

/^ *--- FAIL: / {
	building = 0
	name = test_name($0)
	out($0)
	flush_test(name)
	failing[name] = 1
	finished[name] = 1
	cur = name
	next
}

/^ *--- (PASS|SKIP): / {
	building = 0
	name = test_name($0)
	drop_test(name)
	if (cur == name)
		cur = ""
	next
}

/^(PASS|FAIL)$/ {
	building = 0
	cur = ""
	next
}

/^ok  \t/ || /^\?   \t/ {
	building = 0
	out($0)
	reset_package()
	next
}

/^FAIL\t/ {
	building = 0
	report_leftovers()
	if (seed != "" && $0 !~ /\[build failed\]|\[setup failed\]/)
		out("    (shuffle seed " seed "; rerun with -shuffle=" seed ")")
	out($0)
	reset_package()
	seed = ""
	next
}

/^# / {
	building = 1
	out($0)
	next
}

/^(panic: |fatal error: )/ {
	panicking = 1
}

{
	if (building || panicking || (cur != "" && (cur in failing)))
		out($0)
	else if (cur == "")
		orphan[++norphan] = $0
	else
		keep(cur, $0)
}

END {
	report_leftovers()
}
