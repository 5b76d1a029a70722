package notify

import (
	"sync"
	"time"
)

// Bounds of a listener's memory of acknowledged notifications: a
// _unique_id is remembered for dedupWindow after its notification was
// acknowledged, and at most dedupMax of them.
const (
	dedupWindow = 60 * time.Second
	dedupMax    = 10000
)

// dedup remembers the _unique_ids of acknowledged notifications for a
// while, so that a copy delivered again (a broker redelivers what it
// thinks unacknowledged, a sender re-publishes after a lost confirm) is
// dropped. It is safe for concurrent use.
type dedup struct {
	ttl time.Duration
	max int

	mu    sync.Mutex // guards the fields below
	seen  map[string]time.Time
	order []dedupEntry // insertion order; order[head:] are live
	head  int
}

type dedupEntry struct {
	id string
	at time.Time
}

func newDedup(ttl time.Duration, max int) *dedup {
	return &dedup{ttl: ttl, max: max, seen: make(map[string]time.Time)}
}

// add remembers id as acknowledged at now.
func (d *dedup) add(id string, now time.Time) {
	if id == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked(now)
	if _, ok := d.seen[id]; ok {
		return
	}
	if len(d.seen) >= d.max {
		d.dropOldestLocked()
	}
	d.seen[id] = now
	d.order = append(d.order, dedupEntry{id, now})
}

// contains reports whether id was acknowledged within the window.
func (d *dedup) contains(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked(now)
	_, ok := d.seen[id]
	return ok
}

func (d *dedup) expireLocked(now time.Time) {
	for d.head < len(d.order) && now.Sub(d.order[d.head].at) >= d.ttl {
		d.dropOldestLocked()
	}
}

func (d *dedup) dropOldestLocked() {
	e := d.order[d.head]
	d.order[d.head] = dedupEntry{}
	d.head++
	delete(d.seen, e.id)
	// Reclaim the consumed prefix once it is half of the slice.
	if d.head > 64 && d.head*2 >= len(d.order) {
		d.order = append(d.order[:0], d.order[d.head:]...)
		d.head = 0
	}
}
