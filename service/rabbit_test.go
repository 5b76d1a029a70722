package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
	"github.com/go-oslo/messaging/wire"
)

// The child process: the test binary run with these variables set.
const (
	helperEnv      = "OMSG_SERVICE_TEST_HELPER" // any value selects the helper
	helperURLEnv   = "OMSG_SERVICE_TEST_URL"
	helperTopicEnv = "OMSG_SERVICE_TEST_TOPIC"
	// helperLifetime bounds the child, should its parent vanish.
	helperLifetime = 2 * time.Minute
)

// stdoutMu serializes the child's lines on standard output, which the
// parent reads as events.
var stdoutMu sync.Mutex

func say(line string) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	fmt.Fprintln(os.Stdout, line)
}

// helperMain runs a service, as a command of an OpenStack project does,
// with the process's real signals. It prints READY once it serves,
// RELOADED after each SIGHUP, STARTED when its method "slow" starts, and
// EXITING when Run returned nil; it exits 0 then, and 1 on error.
func helperMain() int {
	time.AfterFunc(helperLifetime, func() {
		fmt.Fprintln(os.Stderr, "helper: lifetime exceeded")
		os.Exit(3)
	})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, err := messaging.Open(os.Getenv(helperURLEnv), messaging.WithLogger(log))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer tr.Close()

	ep := &rpc.Endpoint{Namespace: "compute", Version: "5.0"}
	rpc.Handle(ep, "slow", func(ctx context.Context, a struct {
		Millis int `json:"millis"`
	}) (string, error) {
		rc, _ := oslocontext.FromContext(ctx)
		say("STARTED")
		select {
		case <-time.After(time.Duration(a.Millis) * time.Millisecond):
			return rc.UserID + " " + rc.RequestID, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	svc, err := service.New(tr, "omsg-test-compute", os.Getenv(helperTopicEnv), "host1", []*rpc.Endpoint{ep},
		service.WithLogger(log),
		service.WithDrainTimeout(30*time.Second),
		service.WithReload(func(context.Context) error {
			say("RELOADED")
			return nil
		}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	select {
	case <-svc.Ready():
		say("READY")
		err = <-done
	case err = <-done:
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: Run:", err)
		return 1
	}
	say("EXITING")
	return 0
}

// lineWriter sends each complete line written to it on a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	all   strings.Builder
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		select {
		case w.lines <- line:
		default: // the parent reads a few lines only; never block the child
		}
	}
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// rabbitmqctl runs the broker's control tool, bounded in time.
func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestRabbitServiceSignals runs a service in a child process on a real
// broker and drives it with real signals: SIGHUP reloads it, and SIGTERM
// while a call is in flight lets the call finish and reply before the
// process exits with status 0.
func TestRabbitServiceSignals(t *testing.T) {
	base := os.Getenv("MESSAGING_RABBIT_URL")
	if base == "" {
		t.Skip("MESSAGING_RABBIT_URL not set: SKIPPING this RabbitMQ integration test " +
			"(set e.g. MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/)")
	}
	u, err := driver.ParseURL(base)
	if err != nil {
		t.Fatalf("MESSAGING_RABBIT_URL: %v", err)
	}
	user := "guest"
	if len(u.Hosts) > 0 && u.Hosts[0].Username != "" {
		user = u.Hosts[0].Username
	}
	vhost := "omsg-service-test-" + wire.NewID()[:12]
	rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", vhost) })
	rabbitmqctl(t, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	url := strings.TrimSuffix(base, "/") + "/" + vhost
	topic := "compute-" + wire.NewID()[:10]

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	stdout := &lineWriter{lines: make(chan string, 64)}
	stderr := &lineWriter{lines: make(chan string)}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperURLEnv+"="+url, helperTopicEnv+"="+topic)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second // the context's end kills the child; then stop waiting for its output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	reaped := false
	defer func() {
		if !reaped {
			cancel() // kills the child
			if err := <-exited; err != nil {
				t.Logf("child killed: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("child stdout:\n%s\nchild stderr:\n%s", stdout, stderr)
		}
	}()

	expect := func(want string) {
		t.Helper()
		for {
			select {
			case line := <-stdout.lines:
				if line == want {
					return
				}
			case err := <-exited:
				reaped = true
				t.Fatalf("the child exited (%v) before printing %s", err, want)
			case <-ctx.Done():
				t.Fatalf("no %s from the child: %v", want, ctx.Err())
			}
		}
	}
	expect("READY")

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	expect("RELOADED")

	tr, err := messaging.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	client, err := rpc.NewClient(tr, messaging.Target{Topic: topic, Namespace: "compute", Version: "5.0"},
		rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		t.Fatal(err)
	}
	rc := oslocontext.New()
	rc.UserID = "u-rabbit"
	const millis = 1500
	start := time.Now()
	res := goCall(oslocontext.NewContext(ctx, rc), client, "slow", map[string]int{"millis": millis})
	expect("STARTED")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	var r callResult
	select {
	case r = <-res:
	case <-ctx.Done():
		t.Fatalf("no reply to the call in flight: %v", ctx.Err())
	}
	if want := "u-rabbit " + rc.RequestID; r.err != nil || r.reply != want {
		t.Errorf("call in flight = %q, %v, want %q", r.reply, r.err, want)
	}
	if d := time.Since(start); d < millis*time.Millisecond {
		t.Errorf("the call returned after %v, before the method could end", d)
	}
	select {
	case err := <-exited:
		reaped = true
		if err != nil {
			t.Errorf("the child exited with %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not exit within 30s of SIGTERM")
	}
	if out := stdout.String(); !strings.Contains(out, "EXITING") {
		t.Errorf("the child's Run did not return nil; stdout:\n%s", out)
	}
	if logs := stderr.String(); !strings.Contains(logs, `reason="signal terminated"`) || !strings.Contains(logs, `msg="service: reloaded"`) {
		t.Errorf("the child's log lacks the reload or the stop:\n%s", logs)
	}
}
