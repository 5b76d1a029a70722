package memory

import (
	"fmt"
	"sync"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Broker is an in-memory message broker: a set of exchanges and queues
// shared by the connections it returns. It is safe for concurrent use
// and starts no goroutines. The zero value is an empty broker, ready to
// use; a Broker must not be copied after first use.
//
// The brokers behind [Driver.Open] are shared by the whole process; a
// Broker made by [NewBroker] is private to whoever holds it, which makes
// it the one to use inside a testing/synctest bubble. A Broker must not
// be used from more than one bubble.
type Broker struct {
	// mu guards the fields below and the mutable state of every
	// exchange, queue, listener and connection of the broker. It is
	// never held while waiting.
	mu        sync.Mutex
	exchanges map[string]*exchange
	replies   map[string]*Conn  // by reply queue name
	pools     map[string]*queue // notification pool queues, by pool name
}

// NewBroker returns a new, empty broker, isolated from every other.
func NewBroker() *Broker {
	return &Broker{}
}

// Conn returns a new connection to b. It does not block. The connection
// has its own reply queue, for the replies to its calls, and must be
// closed when no longer needed.
func (b *Broker) Conn() *Conn {
	c := &Conn{
		b:          b,
		replyTo:    "reply_" + wire.NewID(),
		waiters:    make(map[string]*waiter),
		listeners:  make(map[*listener]struct{}),
		nlisteners: make(map[*notifyListener]struct{}),
	}
	b.mu.Lock()
	if b.replies == nil {
		b.replies = make(map[string]*Conn)
	}
	b.replies[c.replyTo] = c
	b.mu.Unlock()
	return c
}

// exchange is one exchange of a broker, with the queues bound to it.
// Its fields are guarded by Broker.mu.
type exchange struct {
	name   string
	queues map[string]*queue   // topic and server queues, by routing key
	fanout map[string][]*queue // fanout queues, by topic
	// notify holds the notification queues "<topic>.<priority>", by
	// routing key (their name); pools the pool queues bound to each
	// notification routing key, in the order they were bound.
	notify map[string]*queue
	pools  map[string][]*queue
}

// exchangeLocked returns the exchange called name, declaring it if
// needed.
func (b *Broker) exchangeLocked(name string) *exchange {
	ex := b.exchanges[name]
	if ex == nil {
		if b.exchanges == nil {
			b.exchanges = make(map[string]*exchange)
		}
		ex = &exchange{name: name, queues: make(map[string]*queue), fanout: make(map[string][]*queue),
			notify: make(map[string]*queue), pools: make(map[string][]*queue)}
		b.exchanges[name] = ex
	}
	return ex
}

// queueLocked returns the queue bound to key, declaring it if needed.
func (ex *exchange) queueLocked(key string) *queue {
	q := ex.queues[key]
	if q == nil {
		q = &queue{name: key}
		ex.queues[key] = q
	}
	return q
}

// removeFanoutLocked unbinds and deletes the fanout queue q of topic.
func (ex *exchange) removeFanoutLocked(topic string, q *queue) {
	qs := ex.fanout[topic]
	for i, x := range qs {
		if x == q {
			qs = append(qs[:i:i], qs[i+1:]...)
			break
		}
	}
	if len(qs) == 0 {
		delete(ex.fanout, topic)
	} else {
		ex.fanout[topic] = qs
	}
}

// message is an encoded request on its way to a server, or an encoded
// notification on its way to a listener.
type message struct {
	body    []byte    // as encoded by package wire; never modified
	expires time.Time // zero: never
}

func (m message) expired(now time.Time) bool {
	return !m.expires.IsZero() && !now.Before(m.expires)
}

// consumer is what a queue pushes its messages to: an RPC listener or a
// notification listener. Its methods are called with Broker.mu held.
type consumer interface {
	// hasRoomLocked reports whether the consumer's prefetch limit allows
	// one more message.
	hasRoomLocked() bool
	// pushLocked hands m, from q, to the consumer.
	pushLocked(m message, q *queue)
}

// queue is a message queue with its consumers. Its fields are guarded
// by Broker.mu.
type queue struct {
	name      string
	fanout    bool       // a listener's private fanout queue
	backlog   []message  // messages not yet pushed to a consumer, oldest first
	consumers []consumer // in order of arrival
	next      int        // index in consumers of the next one to serve
}

// enqueueLocked appends m to q and pushes what it can to the consumers.
func (q *queue) enqueueLocked(m message, now time.Time) {
	q.backlog = append(q.backlog, m)
	q.dispatchLocked(now)
}

// dispatchLocked pushes the backlog to the consumers in turn, as far as
// their prefetch limits allow, dropping the expired messages it finds at
// the front of the queue.
func (q *queue) dispatchLocked(now time.Time) {
	for len(q.backlog) > 0 {
		m := q.backlog[0]
		if !m.expired(now) {
			l := q.pickLocked()
			if l == nil {
				return
			}
			l.pushLocked(m, q)
		}
		q.backlog[0] = message{}
		q.backlog = q.backlog[1:]
	}
	q.backlog = nil // release the array of an emptied queue
}

// pickLocked returns the next consumer in turn with room for a message,
// or nil.
func (q *queue) pickLocked() consumer {
	n := len(q.consumers)
	for i := range n {
		j := (q.next + i) % n
		if l := q.consumers[j]; l.hasRoomLocked() {
			q.next = (j + 1) % n
			return l
		}
	}
	return nil
}

// addConsumerLocked appends l to the consumers of q.
func (q *queue) addConsumerLocked(l consumer) {
	q.consumers = append(q.consumers, l)
}

// removeConsumerLocked removes l from the consumers of q, keeping the
// turn of the others.
func (q *queue) removeConsumerLocked(l consumer) {
	for i, x := range q.consumers {
		if x != l {
			continue
		}
		q.consumers = append(q.consumers[:i:i], q.consumers[i+1:]...)
		if i < q.next {
			q.next--
		}
		if q.next >= len(q.consumers) {
			q.next = 0
		}
		return
	}
}

// requeueLocked puts ms back at the front of q, in their order.
func (q *queue) requeueLocked(ms []message) {
	if len(ms) == 0 {
		return
	}
	backlog := make([]message, 0, len(ms)+len(q.backlog))
	backlog = append(backlog, ms...)
	q.backlog = append(backlog, q.backlog...)
}

// publishLocked routes a request to the queues bound to addr. Without a
// queue, the message is dropped, or refused with ErrUndeliverable if
// mandatory and not a fanout.
func (b *Broker) publishLocked(addr driver.Address, m message, mandatory bool, now time.Time) error {
	ex := b.exchanges[addr.Exchange]
	if addr.Fanout {
		var qs []*queue
		if ex != nil {
			qs = ex.fanout[addr.Topic]
		}
		if len(qs) == 0 {
			return nil // as oslo, mandatory does not apply to fanout
		}
		for _, q := range qs {
			q.enqueueLocked(m, now)
		}
		return nil
	}
	key := routingKey(addr)
	var q *queue
	if ex != nil {
		q = ex.queues[key]
	}
	if q == nil {
		if mandatory {
			return fmt.Errorf("memory: no queue bound to %q on exchange %q: %w",
				key, addr.Exchange, driver.ErrUndeliverable)
		}
		return nil
	}
	q.enqueueLocked(m, now)
	return nil
}

// routingKey returns the routing key of a topic or server address, which
// is also the name of the queue bound to it.
func routingKey(addr driver.Address) string {
	if addr.Server == "" {
		return addr.Topic
	}
	return addr.Topic + "." + addr.Server
}

// routeReply hands an encoded reply or heartbeat to the call waiting for
// it on the connection that owns the reply queue replyTo. It fails with
// ErrUndeliverable if that queue no longer exists. A reply for a call
// that is not waiting is dropped, as oslo's reply waiter drops replies
// to unknown message ids.
func (b *Broker) routeReply(replyTo string, body []byte) error {
	rm, err := wire.DecodeReply(body)
	if err != nil {
		return fmt.Errorf("decoding the reply: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.replies[replyTo]
	if c == nil {
		return fmt.Errorf("reply queue %q does not exist: %w", replyTo, driver.ErrUndeliverable)
	}
	w := c.waiters[rm.MsgID]
	if w == nil {
		return nil
	}
	if !rm.Ending {
		// A heartbeat, or an intermediate result, which the driver's
		// deliveries never send: either way, the server is alive.
		select {
		case w.beat <- struct{}{}:
		default: // a heartbeat is already pending
		}
		return nil
	}
	delete(c.waiters, rm.MsgID)
	w.done <- outcome{reply: &driver.Reply{Result: rm.Result, Failure: rm.Failure}}
	return nil
}
