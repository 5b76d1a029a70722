// Package compare measures this library against bare amqp091-go and
// against Python oslo.messaging on the same RabbitMQ broker, by running
// the three programs that speak the command line and the JSON of
// oslo.messaging's tools/simulator.py: omsg bench raw, omsg bench and
// pybench.py (embedded as [PyBench]), or simulator.py itself.
//
// [Run] runs every scenario (a sequential call, calls with 8 and 64 in
// flight, casts from 1 and 8 publishers, a fanout cast to 3 servers and
// notifications) on each program in turn, as child processes, and
// returns a [Report] whose rows give each program's figures and the
// ratios of ours to the others'. [Report.WriteMarkdown] writes it as one
// Markdown table; the Report also encodes as JSON.
//
// # Method
//
// A cell (one scenario on one program) starts the scenario's servers
// and waits for each to print [ReadyLine] on its standard error, runs
// the client with -l, -j and --payload-size, waits until the servers'
// queues are empty, stops the servers with SIGINT and reads the JSON
// statistics that every program wrote. Rates are computed exactly, as
// (count − 1) / (last_ts − first_ts) of the stream concerned: the round
// trips for calls, the servers' receptions for casts and notifications.
// Latencies are the round trips' p50_latency and p99_latency, and CPU
// per message the programs' process.cpu_s_per_msg.
//
// Every program is bounded in time (Options.ReadyTimeout, ClientTimeout,
// DrainTimeout, StopTimeout) and killed when the context of Run ends.
// A cell that fails is reported in the table; the others still run.
package compare
