package interoptest

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"io"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// unicodeArgs exercise JSON string escaping: Latin, CJK, astral-plane
// characters (UTF-16 surrogate pairs in Python's output), control
// characters, quotes, backslashes and the characters that encoding/json
// escapes for HTML.
func unicodeArgs() map[string]any {
	return map[string]any{
		"text":   "héllo wörld ✓ 日本語 Ελληνικά русский 🎉🚀 \U0010FFFF",
		"ctl":    "nul\x00 tab\t nl\n cr\r bell\x07 esc\x1b del\x7f",
		"quotes": `"double" 'single' back\slash /slash <tag> & amp`,
		"keys":   map[string]any{"ключ": "値", "emoji 🎉": []any{"\u2028", "\u2029", "\ufeff"}},
	}
}

// bigArgs is about 1 MiB of arguments, mostly ASCII with some
// non-ASCII characters, which Python escapes.
func bigArgs() map[string]any {
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteString("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-é✓\n")
	}
	return map[string]any{"blob": b.String(), "n": 1}
}

// TestInteropPayload sends Unicode and 1 MiB arguments each way and
// gets them back as the result.
func TestInteropPayload(t *testing.T) {
	setup(t)
	t.Parallel()

	for _, pc := range []struct {
		name string
		args func() map[string]any
	}{{"unicode", unicodeArgs}, {"large_1MiB", bigArgs}} {
		runCase(t, pc.name+"/python_client_go_server", func(t *testing.T) {
			e, p, rec := newCase(t)
			topic := e.name("payload")
			e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
			args := pc.args()
			out := e.pyOK(p, pyReq{Op: "call", Topic: topic, Method: "echo", Args: args, Timeout: 60})
			var res struct {
				Args map[string]any `json:"args"`
			}
			decode(t, out.Result, &res)
			checkSame(t, "Go server's echo", res.Args, args)
		})
		runCase(t, pc.name+"/go_client_python_server", func(t *testing.T) {
			e, p, rec := newCase(t)
			topic := e.name("payload")
			e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
			c := e.client(e.transport(), messaging.Target{Topic: topic})
			args := pc.args()
			var res struct {
				Args map[string]any `json:"args"`
			}
			if err := c.Call(e.ctx(opTimeout), "echo", args, &res); err != nil {
				t.Fatalf("Call echo: %v", err)
			}
			checkSame(t, "Python server's echo", res.Args, args)
		})
	}
}

// checkSame compares JSON-like values, describing the first difference
// briefly (the values may be 1 MiB long).
func checkSame(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g := got[k]
		if jsonEqual(g, w) {
			continue
		}
		gs, ws := string(mustJSON(t, g)), string(mustJSON(t, w))
		i := 0
		for i < len(gs) && i < len(ws) && gs[i] == ws[i] {
			i++
		}
		t.Errorf("%s: argument %q differs at byte %d of its JSON (lengths %d and %d): got …%s…, want …%s…",
			what, k, i, len(gs), len(ws), excerpt(gs, i), excerpt(ws, i))
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d arguments, want %d", what, len(got), len(want))
	}
}

func excerpt(s string, i int) string {
	lo, hi := max(0, i-20), min(len(s), i+40)
	return s[lo:hi]
}

// TestInteropCompression compresses on one side only
// (kombu_compression=gzip, zlib bodies with the header
// compression=application/x-gzip), then on the other: messages are
// understood both ways. A capture queue checks that the compressing side
// really compresses its requests, and a raw request that its replies
// are compressed too.
func TestInteropCompression(t *testing.T) {
	setup(t)
	t.Parallel()

	gzip := []string{"kombu_compression", "gzip"}
	for _, side := range []string{"go", "python"} {
		var goOpts, pyOpts []string
		if side == "go" {
			goOpts = gzip
		} else {
			pyOpts = gzip
		}
		for _, dir := range []struct{ name, client string }{{"python_client_go_server", "python"}, {"go_client_python_server", "go"}} {
			runCase(t, side+"_gzip/"+dir.name, func(t *testing.T) {
				e, p, rec := newCase(t)
				tr := e.transport(goOpts...)
				pyURL := e.s.url(pyOpts...)
				topic := e.name("gzip")
				ex := e.name("gzip_ex")
				capt := e.newCapture(bindControl(ex, topic+".s1"))
				if dir.client == "python" {
					e.startGoServer(tr, messaging.Target{Exchange: ex, Topic: topic, Server: "s1"}, rec)
				} else {
					e.startPyServer(p, pyURL, ex, topic, "s1", rec)
				}
				clientGzip := side == dir.client
				serverGzip := !clientGzip

				args := unicodeArgs()
				var res struct {
					Args map[string]any `json:"args"`
				}
				if dir.client == "python" {
					out := e.pyOK(p, pyReq{Op: "call", URL: pyURL, Exchange: ex, Topic: topic, Server: "s1", Method: "echo", Args: args, Timeout: 30})
					decode(t, out.Result, &res)
					e.pyOK(p, pyReq{Op: "cast", URL: pyURL, Exchange: ex, Topic: topic, Server: "s1", Method: "record", Args: map[string]any{"item": "z"}})
				} else {
					c := e.client(tr, messaging.Target{Exchange: ex, Topic: topic, Server: "s1"})
					if err := c.Call(e.ctx(opTimeout), "echo", args, &res); err != nil {
						t.Fatalf("Call echo: %v", err)
					}
					if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": "z"}); err != nil {
						t.Fatalf("Cast: %v", err)
					}
				}
				checkSame(t, "echo", res.Args, args)
				if ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]; ev.Args["item"] != "z" {
					t.Errorf("cast arrived as %+v", ev)
				}

				// The client's request and cast, as published.
				for _, what := range []string{"call request", "cast"} {
					d := capt.next(t, e.ctx(opTimeout))
					checkCompression(t, "client's "+what, d, clientGzip)
				}
				// The server's reply, to a raw request.
				req := &driver.Request{Method: "golden", MsgID: wire.NewID(), ReplyTo: capt.queue, UniqueID: wire.NewID()}
				capt.publishRequest(t, e.ctx(opTimeout), ex, topic+".s1", req)
				d := capt.next(t, e.ctx(opTimeout))
				if d.RoutingKey == topic+".s1" { // our own request, captured first
					d = capt.next(t, e.ctx(opTimeout))
				}
				checkCompression(t, "server's reply", d, serverGzip)
			})
		}
	}
}

// checkCompression checks that a captured message is compressed as
// kombu compresses (or not at all) and holds an oslo message.
func checkCompression(t *testing.T, what string, d amqp.Delivery, compressed bool) {
	t.Helper()
	h, _ := d.Headers["compression"].(string)
	body := d.Body
	if compressed {
		if h != "application/x-gzip" {
			t.Errorf("%s: compression header %q, want application/x-gzip", what, h)
			return
		}
		zr, err := zlib.NewReader(bytes.NewReader(d.Body))
		if err != nil {
			t.Errorf("%s: body is not a zlib stream: %v", what, err)
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Errorf("%s: body is not a zlib stream: %v", what, err)
			return
		}
	} else if h != "" {
		t.Errorf("%s: compression header %q, want none", what, h)
	}
	if d.ContentType != "application/json" {
		t.Errorf("%s: content type %q", what, d.ContentType)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil || env["oslo.version"] == nil {
		t.Errorf("%s: body is not an oslo envelope: %v: %s", what, err, truncate(string(body), 200))
	}
}
