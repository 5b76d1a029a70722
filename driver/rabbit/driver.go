package rabbit

import (
	messaging "github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
)

func init() {
	messaging.Register("rabbit", Driver{})
	messaging.Register("kombu", Driver{})
}

// Driver opens RabbitMQ connections from transport URLs. It is
// registered for the schemes "rabbit" and "kombu". The zero value is
// ready to use.
type Driver struct{}

// Open returns a [*Conn] configured by u (see [ConfigFromURL]). It does
// no network I/O and starts no goroutines: the Conn connects on first
// use. It returns an error wrapping messaging.ErrInvalidOption for an
// option it cannot accept.
func (Driver) Open(u *driver.URL) (driver.Conn, error) {
	cfg, err := ConfigFromURL(u)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

var (
	_ driver.Driver  = Driver{}
	_ driver.RPCConn = (*Conn)(nil)
)
