package rabbit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
)

// TestConnFormatRedacts checks that no format verb prints a Conn's
// user name or password.
func TestConnFormatRedacts(t *testing.T) {
	c, err := New(Config{Hosts: []driver.Host{{Hostname: "h1", Port: 5673, Username: "u-name", Password: "s3cr3t-pw"}}, VirtualHost: "v"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%d"} {
		out := fmt.Sprintf(verb, c)
		if strings.Contains(out, "s3cr3t-pw") || strings.Contains(out, "u-name") {
			t.Errorf("%s printed a credential: %s", verb, out)
		}
		if out != "rabbit.Conn(h1:5673 /v)" {
			t.Errorf("%s printed %q, want rabbit.Conn(h1:5673 /v)", verb, out)
		}
	}
}
