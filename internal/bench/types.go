package bench

import "time"

// Config is the command line of a benchmark run, as oslo.messaging's
// simulator takes it: the global options and those of the mode.
type Config struct {
	URL        string        // transport URL (--url)
	Topic      string        // -tp/--topic
	Server     string        // -s/--server
	Targets    []string      // -tg/--targets: "topic.server" words, for clients
	Duration   time.Duration // -l: run time of clients and servers; 0 for none
	Threads    int           // -p: concurrent senders
	Messages   int           // -m: messages per sender when Duration is 0
	Timeout    time.Duration // --timeout: of each call or send
	WaitAfter  time.Duration // client -w: pause after each message
	WaitBefore time.Duration // server -w: pause before each answer
	ExitWait   time.Duration // --exit-wait: keep the connections open after sending
	Cast       bool          // --is-cast
	Fanout     bool          // --is-fanout
	Sync       string        // --sync: "", "call" or "fanout"
	Requeue    bool          // notify-server --requeue
	Payloads   []string      // the cargos, pre-generated
}

// Kind says which stream of the statistics a Sample belongs to.
type Kind int

// The streams of the simulator's statistics.
const (
	Sent      Kind = iota // a client sent a message (client_<i>)
	Failed                // a client's send or call failed (error_<i>)
	RoundTrip             // a call's reply came back (round_trip_<i>)
	Received              // a server received a message (server)
)

// Sample is one message's event, given to a Recorder. The timestamps
// are float Unix seconds, as the simulator's Message carries them; 0
// when not set.
type Sample struct {
	Kind     Kind
	Sender   int // the client thread; 0 for servers
	Seq      int64
	Size     int // len(cargo)
	ClientTS float64
	ServerTS float64
	ReturnTS float64
	Err      error // for Failed
}

// Recorder takes the Samples of a run. It is safe for concurrent use.
type Recorder interface {
	Record(Sample)
}
