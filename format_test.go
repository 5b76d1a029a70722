package messaging_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
)

// TestTransportFormatRedacts checks that no format verb prints the
// password of a Transport's URL.
func TestTransportFormatRedacts(t *testing.T) {
	tr, err := messaging.Open("memory://user:s3cr3t-pw@host/vhost")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%d", "%T"} {
		out := fmt.Sprintf(verb, tr)
		if strings.Contains(out, "s3cr3t-pw") {
			t.Errorf("%s printed the password: %s", verb, out)
		}
		if verb != "%T" && !strings.Contains(out, "messaging.Transport(") {
			t.Errorf("%s printed %q, want messaging.Transport(...)", verb, out)
		}
	}
	var none *messaging.Transport
	if got := fmt.Sprint(none); got != "messaging.Transport(nil)" {
		t.Errorf("nil Transport printed %q", got)
	}
}
