package rabbit

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// hostRing picks the broker to connect to. Every connection of a Conn
// starts from the same current host, so that after a failover they all
// end up on the same node; a failed attempt moves the ring on.
type hostRing struct {
	mu      sync.Mutex
	hosts   []driver.Host
	order   []int // a permutation of hosts
	cur     int   // index into order
	shuffle bool  // reshuffle at the end of each cycle
}

func newHostRing(hosts []driver.Host, shuffle bool) *hostRing {
	r := &hostRing{hosts: hosts, shuffle: shuffle, order: rand.Perm(len(hosts))}
	return r
}

// current returns the host to try and its position, for failed.
func (r *hostRing) current() (int, driver.Host) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, r.hosts[r.order[r.cur]]
}

// failed moves past pos unless another connection already did.
func (r *hostRing) failed(pos int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pos != r.cur {
		return
	}
	r.cur++
	if r.cur == len(r.order) {
		r.cur = 0
		if r.shuffle && len(r.order) > 1 {
			rand.Shuffle(len(r.order), func(i, j int) { r.order[i], r.order[j] = r.order[j], r.order[i] })
		}
	}
}

func (r *hostRing) len() int { return len(r.hosts) }

// retryDelay returns the wait before connection attempt n+1, n >= 1:
// interval + backoff*(2^(n-1)-1), capped at max, scaled by a random
// factor in [0.5, 1), plus a random splay.
func (s *settings) retryDelay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := s.retryInterval
	if s.retryBackoff > 0 {
		step := s.retryBackoff
		for i := 1; i < n && d < s.intervalMax; i++ {
			d += step
			step *= 2
		}
	}
	if s.intervalMax > 0 && d > s.intervalMax {
		d = s.intervalMax
	}
	return s.jitter(d)
}

// reconnectDelay is the wait before reconnecting a consumer connection
// that was lost (kombu_reconnect_delay), with the splay.
func (s *settings) reconnectDelay() time.Duration {
	return s.jitter(s.reconnectWait)
}

func (s *settings) jitter(d time.Duration) time.Duration {
	if d > 0 {
		d = d/2 + rand.N(d/2+1)
	}
	if s.splay > 0 {
		d += rand.N(s.splay)
	}
	return d
}

// sleep waits for d or until ctx is done, and reports whether it waited
// the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
