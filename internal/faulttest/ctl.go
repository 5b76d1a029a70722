package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// QueueInfo is one queue of a node, as rabbitmqctl list_queues shows it.
type QueueInfo struct {
	VHost     string
	Name      string
	Messages  int // ready and unacknowledged
	Unacked   int
	Consumers int
}

// ConnectionInfo is one client connection of a node, as rabbitmqctl
// list_connections shows it.
type ConnectionInfo struct {
	// PID is the connection's Erlang process, as close_connection takes
	// it.
	PID string
	// Name is the client-provided connection_name property ("" if the
	// client gave none).
	Name string
	// Addr is the broker's name of the connection, "client -> server"
	// addresses.
	Addr     string
	User     string
	VHost    string
	PeerPort int
	// State is "running", "blocking" or "blocked" (under an alarm), ...
	State string
}

// Ctl runs rabbitmqctl -n <node> with args and the node's HOME (hence
// its cookie), bounded by ctx and [CtlTimeout], and returns its standard
// output. The error carries the standard error. It never addresses
// another node.
func (n *Node) Ctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CtlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, CtlPath, append([]string{"-n", n.name}, args...)...)
	cmd.Dir = n.dir
	cmd.Env = n.ctlEnv
	cmd.SysProcAttr = procAttr()
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		return stdout.String(), fmt.Errorf("faulttest: rabbitmqctl -n %s %s: %w\n%s", n.name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// ctlJSON runs a listing command with JSON output and decodes it into v.
func (n *Node) ctlJSON(ctx context.Context, v any, args ...string) error {
	out, err := n.Ctl(ctx, append(args, "--formatter", "json", "--quiet")...)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("faulttest: rabbitmqctl %s: decoding its output: %w\n%s", args[0], err, out)
	}
	return nil
}

// StopApp stops the RabbitMQ application (rabbitmqctl stop_app): the
// Erlang VM keeps running but every client connection is closed and new
// ones are refused.
func (n *Node) StopApp(ctx context.Context) error {
	_, err := n.Ctl(ctx, "stop_app")
	return err
}

// StartApp starts the RabbitMQ application again (rabbitmqctl
// start_app) and waits, up to ctx, until it accepts AMQP connections.
func (n *Node) StartApp(ctx context.Context) error {
	if _, err := n.Ctl(ctx, "start_app"); err != nil {
		return err
	}
	n.life.Lock()
	p := n.proc
	n.life.Unlock()
	if p == nil {
		return ErrNotRunning
	}
	if err := n.waitReady(ctx, p); err != nil {
		return fmt.Errorf("faulttest: node %s after start_app: %w", n.name, err)
	}
	return nil
}

// SetMemoryAlarm raises the memory alarm (vm_memory_high_watermark 0:
// every publishing connection gets blocked) or clears it (back to the
// default, 0.4), and waits, up to ctx, until the node reports the
// alarm's new state.
func (n *Node) SetMemoryAlarm(ctx context.Context, on bool) error {
	mark := defaultMemoryWatermark
	if on {
		mark = "0"
	}
	if _, err := n.Ctl(ctx, "set_vm_memory_high_watermark", mark); err != nil {
		return err
	}
	return n.waitAlarm(ctx, "memory", on)
}

// SetDiskAlarm raises the disk alarm (a disk free limit of 1 EB: every
// publishing connection gets blocked) or clears it (back to the default
// limit, 50 MB), and waits, up to ctx, until the node reports the
// alarm's new state.
func (n *Node) SetDiskAlarm(ctx context.Context, on bool) error {
	limit := defaultDiskFreeLimit
	if on {
		limit = "1000000000000000000"
	}
	if _, err := n.Ctl(ctx, "set_disk_free_limit", limit); err != nil {
		return err
	}
	return n.waitAlarm(ctx, "disk", on)
}

// Alarms returns the resources ("memory", "disk") in alarm on the node.
func (n *Node) Alarms(ctx context.Context) ([]string, error) {
	out, err := n.Ctl(ctx, "eval", "rabbit_alarm:get_alarms().")
	if err != nil {
		return nil, err
	}
	// [{{resource_limit,disk,'name@host'},[]}]
	var alarms []string
	for _, res := range []string{"memory", "disk"} {
		if strings.Contains(out, "{resource_limit,"+res+",") {
			alarms = append(alarms, res)
		}
	}
	return alarms, nil
}

func (n *Node) waitAlarm(ctx context.Context, resource string, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		alarms, err := n.Alarms(ctx)
		if err != nil {
			return err
		}
		active := false
		for _, a := range alarms {
			active = active || a == resource
		}
		if active == on {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("faulttest: node %s: %s alarm still %v: %w", n.name, resource, !on, ctx.Err())
		case <-tick.C:
		}
	}
}

// ListQueues returns the queues of every virtual host of the node.
func (n *Node) ListQueues(ctx context.Context) ([]QueueInfo, error) {
	var vhosts []struct {
		Name string `json:"name"`
	}
	if err := n.ctlJSON(ctx, &vhosts, "list_vhosts", "name"); err != nil {
		return nil, err
	}
	var queues []QueueInfo
	for _, vh := range vhosts {
		var rows []map[string]any
		if err := n.ctlJSON(ctx, &rows, "list_queues", "-p", vh.Name,
			"name", "messages", "messages_unacknowledged", "consumers"); err != nil {
			return nil, err
		}
		for _, r := range rows {
			queues = append(queues, QueueInfo{
				VHost:     vh.Name,
				Name:      str(r["name"]),
				Messages:  num(r["messages"]),
				Unacked:   num(r["messages_unacknowledged"]),
				Consumers: num(r["consumers"]),
			})
		}
	}
	return queues, nil
}

// ListConnections returns the node's client connections.
func (n *Node) ListConnections(ctx context.Context) ([]ConnectionInfo, error) {
	var rows []map[string]any
	if err := n.ctlJSON(ctx, &rows, "list_connections",
		"name", "user", "vhost", "peer_port", "state", "client_properties"); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	// The JSON formatter prints process ids in a form close_connection
	// does not take; the table formatter prints them as it wants.
	out, err := n.Ctl(ctx, "list_connections", "name", "pid", "--quiet", "--no-table-headers")
	if err != nil {
		return nil, err
	}
	pids := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if name, pid, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok {
			pids[name] = pid
		}
	}
	conns := make([]ConnectionInfo, 0, len(rows))
	for _, r := range rows {
		c := ConnectionInfo{
			Addr:     str(r["name"]),
			User:     str(r["user"]),
			VHost:    str(r["vhost"]),
			PeerPort: num(r["peer_port"]),
			State:    str(r["state"]),
			Name:     clientProperty(r["client_properties"], "connection_name"),
		}
		c.PID = pids[c.Addr]
		conns = append(conns, c)
	}
	return conns, nil
}

// CloseConnections closes, with rabbitmqctl close_connection, every
// connection whose client-provided name contains match or whose user is
// match, or every connection of the node when match is "" (then with
// close_all_connections). Clients see a connection.close with code 320
// (CONNECTION_FORCED) and the reason "faulttest". It returns how many
// connections it closed.
func (n *Node) CloseConnections(ctx context.Context, match string) (int, error) {
	conns, err := n.ListConnections(ctx)
	if err != nil {
		return 0, err
	}
	if match == "" {
		if len(conns) == 0 {
			return 0, nil
		}
		_, err := n.Ctl(ctx, "close_all_connections", "faulttest")
		return len(conns), err
	}
	closed := 0
	var errs []error
	for _, c := range conns {
		if !(strings.Contains(c.Name, match) || c.User == match) {
			continue
		}
		if c.PID == "" {
			errs = append(errs, fmt.Errorf("faulttest: no process id for connection %s", c.Addr))
			continue
		}
		if _, err := n.Ctl(ctx, "close_connection", c.PID, "faulttest"); err != nil {
			errs = append(errs, err)
			continue
		}
		closed++
	}
	return closed, errors.Join(errs...)
}

// clientProperty finds key in rabbitmqctl's JSON rendering of a client
// properties table: a list of [key, type, value].
func clientProperty(props any, key string) string {
	list, _ := props.([]any)
	for _, e := range list {
		kv, _ := e.([]any)
		if len(kv) == 3 && str(kv[0]) == key {
			return str(kv[2])
		}
	}
	return ""
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// num converts a JSON number to an int; anything else (a queue whose
// node is down shows "") is 0.
func num(v any) int {
	switch v := v.(type) {
	case json.Number:
		i, _ := strconv.Atoi(v.String())
		return i
	case float64:
		return int(v)
	}
	return 0
}
