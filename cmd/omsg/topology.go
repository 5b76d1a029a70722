package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// topology lists a RabbitMQ virtual host's queues and exchanges with
// rabbitmqctl, as an operator would. It works where rabbitmqctl can
// reach the broker (the broker's own machine, with its Erlang cookie).
type topology struct {
	vhost string
}

// newTopology returns a lister for the broker of rawURL, or nil when the
// URL is not a RabbitMQ one or rabbitmqctl is not installed.
func newTopology(rawURL string) *topology {
	u, err := driver.ParseURL(rawURL)
	if err != nil {
		return nil
	}
	switch scheme, _, _ := strings.Cut(u.Scheme, "+"); scheme {
	case "rabbit", "kombu":
	default:
		return nil
	}
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		return nil
	}
	vh := u.VirtualHost
	if vh == "" {
		vh = "/"
	}
	return &topology{vhost: vh}
}

// snapshot is the rows of list_queues (name, messages, consumers) and
// list_exchanges (name, type), keyed by name.
type snapshot struct {
	queues    map[string]string
	exchanges map[string]string
}

func (tp *topology) snapshot(ctx context.Context) (snapshot, error) {
	q, err := tp.rows(ctx, "list_queues", "name", "messages", "consumers")
	if err != nil {
		return snapshot{}, err
	}
	e, err := tp.rows(ctx, "list_exchanges", "name", "type")
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{queues: q, exchanges: e}, nil
}

func (tp *topology) rows(ctx context.Context, what string, cols ...string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append([]string{"-q", what, "-p", tp.vhost}, cols...)
	args = append(args, "--no-table-headers")
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "rabbitmqctl", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("rabbitmqctl %s: %w: %s", what, err, strings.TrimSpace(errb.String()))
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if line == "" {
			continue
		}
		name, rest, _ := strings.Cut(line, "\t")
		rows[name] = rest
	}
	return rows, nil
}

// related reports whether a queue or exchange name belongs to the demo:
// the control exchange, the topic's queues and fanout exchange, or
// anything absent from the snapshot taken before the demo started.
func related(name, topic, exchange string, before map[string]string) bool {
	if name == exchange || name == topic || strings.HasPrefix(name, topic+".") || strings.HasPrefix(name, topic+"_fanout") {
		return true
	}
	_, existed := before[name]
	return !existed && name != ""
}

// print writes the demo's queues and exchanges in rabbitmqctl's layout.
func (tp *topology) print(p func(string, ...any), now, before snapshot, topic, exchange string) {
	p("$ rabbitmqctl list_queues -p %s name messages consumers   (the demo's)", tp.vhost)
	for _, name := range sortedKeys(now.queues) {
		if related(name, topic, exchange, before.queues) {
			p("  %s\t%s", name, now.queues[name])
		}
	}
	p("$ rabbitmqctl list_exchanges -p %s name type   (the demo's)", tp.vhost)
	for _, name := range sortedKeys(now.exchanges) {
		if related(name, topic, exchange, before.exchanges) {
			p("  %s\t%s", name, now.exchanges[name])
		}
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
