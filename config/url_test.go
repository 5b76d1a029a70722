package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secret = "hunter2"

func TestURLRedaction(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"rabbit://nova:hunter2@rabbit1:5672,nova:hunter2@rabbit2:5672/nova", "rabbit://nova:***@rabbit1:5672,nova:***@rabbit2:5672/nova"},
		{"rabbit://nova:hunter2%2F@r/?ssl=true", "rabbit://nova:***@r/?ssl=true"},
		{"rabbit://", "rabbit://"},
		{"rabbit://guest@h//", "rabbit://guest@h//"}, // no password: as written
		{"", ""},
		{"rabbit://nova:hunter2@h:port/", "<invalid transport URL>"},
		{"hunter2", "<invalid transport URL>"},
	} {
		u := URL(tt.url)
		if got := u.String(); got != tt.want {
			t.Errorf("URL(%q).String() = %q, want %q", tt.url, got, tt.want)
		}
		if u.Unredacted() != tt.url {
			t.Errorf("Unredacted() = %q", u.Unredacted())
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10s"} {
			if got := fmt.Sprintf(verb, u); strings.Contains(got, secret) {
				t.Errorf("Sprintf(%s, %q) = %q", verb, tt.url, got)
			}
		}
	}
	if got := fmt.Sprintf("%#v", URL("rabbit://a:hunter2@h/")); got != `"rabbit://a:***@h/"` {
		t.Errorf("%%#v = %s", got)
	}
}

// TestSecretsNeverPrinted prints a configuration with secrets in every
// way a program might.
func TestSecretsNeverPrinted(t *testing.T) {
	f := parse(t, `[DEFAULT]
transport_url = rabbit://nova:hunter2@rabbit1:5672,nova:hunter2@rabbit2:5672/nova
[oslo_messaging_notifications]
transport_url = kombu://notif:hunter2@rabbit3/
`)
	m, _, err := FromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	rpcURL, _ := m.RPCURL()
	notifURL, _ := m.NotificationURL()
	if !strings.Contains(rpcURL.Unredacted(), secret) || !strings.Contains(notifURL.Unredacted(), secret) {
		t.Fatal("the URLs lost their passwords")
	}

	var printed []string
	for _, v := range []any{m, *m, m.Notifications, &m.Notifications, m.TransportURL, rpcURL, notifURL, f} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			printed = append(printed, fmt.Sprintf(verb, v))
		}
		data, err := json.Marshal(v)
		if err != nil && v != any(f) {
			t.Errorf("json.Marshal(%T): %v", v, err)
		}
		printed = append(printed, string(data))
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "v", v)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "v", v)
		printed = append(printed, buf.String())
	}
	printed = append(printed, m.String(), fmt.Sprint(m.Rabbit))
	for _, p := range printed {
		if strings.Contains(p, secret) {
			t.Errorf("printed a password: %s", p)
		}
	}
	if !strings.Contains(m.String(), "rabbit://nova:***@rabbit1:5672") {
		t.Errorf("String() lost the URL:\n%s", m)
	}
}
