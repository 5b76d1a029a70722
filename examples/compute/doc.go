// Package compute is the compute example of go-oslo/messaging: the
// architecture of an OpenStack project in Go. A REST API calls a
// conductor; the conductor keeps the instances and casts to the compute
// service of each instance's host; compute services emit notifications,
// which a billing service records, and tell every scheduler about their
// host with a fanout cast. See README.md for the walk-through.
//
// The parts are in the sub-packages, each with a manager (its RPC
// methods) and an rpcapi package (what the other services call):
// api, conductor, compute, scheduler and billing; the commands are in
// cmd/compute-*. This package holds only the end-to-end tests.
package compute
