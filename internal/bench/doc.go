// Package bench runs the benchmark modes of omsg bench on this library:
// an RPC server and clients, a notification listener and notifiers,
// speaking the command line and the statistics of oslo.messaging's
// tools/simulator.py, so that a Go and a Python process can replace
// each other on the same broker and their figures can be compared.
//
// The modes (RPCServer, RPCClient, NotifyServer, BatchNotifyServer,
// NotifyClient) take a [Config] and report every message to a
// [Recorder]. [Stats] is the Recorder of omsg bench: it keeps the
// simulator's per-second series of each stream (client_<i>, error_<i>,
// round_trip_<i>, server), summarises them as the simulator's calc_stats
// does, adds latency percentiles from a [Histogram] and the CPU and
// memory the process used, and writes the simulator's JSON.
//
// The message of every mode is the simulator's Message namedtuple as
// oslo serialises it, the JSON array [seq, cargo, client_ts, server_ts,
// return_ts], whose cargo is a random lowercase string from [Payloads].
package bench
