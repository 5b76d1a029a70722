package memory

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
)

func init() {
	messaging.Register("memory", Driver{})
	messaging.Register("fake", Driver{})
}

// Driver opens connections to the process-wide in-memory brokers. The
// zero value is ready to use. It is registered for the URL schemes
// "memory" and "fake".
type Driver struct{}

var _ driver.Driver = Driver{}

// vhosts holds the process-wide brokers, one per virtual host.
var vhosts struct {
	mu      sync.Mutex // guards brokers
	brokers map[string]*Broker
}

// Open returns a new connection, a [*Conn], to the broker of
// u.VirtualHost, creating the broker on first use. Brokers live as long
// as the process. Hosts in u are ignored. Open does not block.
//
// It fails with an error wrapping [messaging.ErrInvalidOption] if u is
// nil or has query options, since the driver accepts none.
func (Driver) Open(u *driver.URL) (driver.Conn, error) {
	if u == nil {
		return nil, fmt.Errorf("memory: nil transport URL: %w", messaging.ErrInvalidOption)
	}
	if len(u.Query) > 0 {
		keys := make([]string, 0, len(u.Query))
		for k := range u.Query {
			keys = append(keys, fmt.Sprintf("%q", k))
		}
		sort.Strings(keys)
		noun := "option"
		if len(keys) > 1 {
			noun = "options"
		}
		return nil, fmt.Errorf("memory: unknown %s %s in transport URL (the memory driver accepts none): %w",
			noun, strings.Join(keys, ", "), messaging.ErrInvalidOption)
	}
	vhosts.mu.Lock()
	defer vhosts.mu.Unlock()
	b := vhosts.brokers[u.VirtualHost]
	if b == nil {
		if vhosts.brokers == nil {
			vhosts.brokers = make(map[string]*Broker)
		}
		b = NewBroker()
		vhosts.brokers[u.VirtualHost] = b
	}
	return b.Conn(), nil
}
