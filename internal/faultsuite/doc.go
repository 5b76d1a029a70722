// Package faultsuite holds the reliability scenarios: tests that run
// the library against RabbitMQ nodes of their own and inject faults
// (connection resets, half-open links, broker restarts, alarms, node
// failures, malformed and malicious messages, TLS failures) through
// package faulttest, then check the library's promises with a ledger:
// no caller hangs, no call succeeds without running, no confirmed cast
// or notification is lost where the broker kept it, nothing leaks.
// RELIABILITY.md states the contract and the latest results.
//
// The package has tests only. Each scenario is a TestIntegrationSnn...
// function, bounded to about a minute, and reports its outcome with
// [record]; with OMSG_RELIABILITY_OUT set, the outcomes are also
// appended to that file as JSON lines.
package faultsuite
