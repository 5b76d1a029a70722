package faulttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeMemory is what a cluster needs per node on this machine's
// measure (about 150 MB resident each), with room to spare.
const nodeMemory = 400 << 20

// Cluster is a RabbitMQ cluster of private nodes made by [StartCluster].
type Cluster struct {
	// Nodes are the members; the others joined Nodes[0].
	Nodes []*Node
}

// StartCluster starts n private nodes with opts (and one shared Erlang
// cookie) and joins Nodes[1:] to Nodes[0] (stop_app, join_cluster,
// start_app), then waits until every node sees all of them running. It
// fails t if the cluster does not form and skips t as [StartNode] does;
// it also skips t, saying so loudly, when /proc/meminfo shows too little
// available memory for n nodes. The nodes stop when the test ends.
func StartCluster(t testing.TB, n int, opts NodeOptions) *Cluster {
	t.Helper()
	requireIntegration(t)
	if n < 1 {
		t.Fatalf("faulttest: StartCluster: %d nodes", n)
	}
	if avail, ok := availableMemory(); ok && avail < uint64(n)*nodeMemory {
		t.Skipf("faulttest: SKIPPING: a %d-node RabbitMQ cluster needs about %d MiB of available memory, "+
			"and /proc/meminfo shows only %d MiB available", n, uint64(n)*nodeMemory>>20, avail>>20)
	}
	if opts.Cookie == "" {
		opts.Cookie = strings.ToUpper(randomHex(16))
	}
	start := time.Now()
	c := &Cluster{}
	for range n {
		node, err := newNode(t, opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, node)
	}
	ctx := t.Context()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, node := range c.Nodes {
		wg.Go(func() { errs[i] = node.Start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.Nodes[1:] {
		if err := node.join(ctx, c.Nodes[0]); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("faulttest: %d-node cluster formed in %v", n, time.Since(start).Round(time.Millisecond))
	return c
}

// join makes n a member of seed's cluster.
func (n *Node) join(ctx context.Context, seed *Node) error {
	if err := n.StopApp(ctx); err != nil {
		return err
	}
	if _, err := n.Ctl(ctx, "join_cluster", seed.name); err != nil {
		return err
	}
	return n.StartApp(ctx)
}

// waitFormed waits, up to ctx and a minute, until every node reports
// all nodes running.
func (c *Cluster) waitFormed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	want := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		want[i] = n.name
	}
	slices.Sort(want)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var last []string
		formed := true
		for _, n := range c.Nodes {
			running, err := n.RunningNodes(ctx)
			if err != nil {
				return err
			}
			slices.Sort(running)
			if !slices.Equal(running, want) {
				formed, last = false, running
				break
			}
		}
		if formed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("faulttest: cluster not formed: running %v, want %v: %w", last, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// RunningNodes returns the names of the running members of the node's
// cluster, as the node sees them (rabbitmqctl cluster_status).
func (n *Node) RunningNodes(ctx context.Context) ([]string, error) {
	var status struct {
		Running []string `json:"running_nodes"`
	}
	if err := n.ctlJSON(ctx, &status, "cluster_status"); err != nil {
		return nil, err
	}
	return status.Running, nil
}

// URL returns a multi-host transport URL listing every node, as guest on
// the virtual host "/".
func (c *Cluster) URL() string {
	hosts := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		hosts[i] = "guest:guest@" + n.Addr()
	}
	return "rabbit://" + strings.Join(hosts, ",") + "/"
}

// availableMemory reads MemAvailable from /proc/meminfo, in bytes.
func availableMemory() (uint64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
