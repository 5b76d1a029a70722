package faulttest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIntegrationCluster(t *testing.T) {
	c := StartCluster(t, 3, NodeOptions{Name: "ftcl"})
	ctx := integrationCtx(t)
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name()
	}
	slices.Sort(names)
	if u := c.URL(); strings.Count(u, "guest:guest@127.0.0.1:") != 3 || !strings.HasPrefix(u, "rabbit://") {
		t.Errorf("URL() = %q", u)
	}

	// A queue declared on one node is listed by another.
	conn := amqpDial(t, c.Nodes[0].AMQPURL(), "ft-cluster", 0)
	if _, err := channel(t, conn).QueueDeclare("ft-shared", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	queues, err := c.Nodes[2].ListQueues(ctx)
	if _, ok := findQueue(queues, "ft-shared"); err != nil || !ok {
		t.Errorf("node 3 lists %+v, %v; want the queue declared on node 1", queues, err)
	}

	// A killed member drops out of the running nodes, and its restart
	// brings it back.
	if err := c.Nodes[1].Kill(ctx); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == c.Nodes[1].Name() })
	var running []string
	for range 100 { // at most 100 polls, ~60 s
		if running, err = c.Nodes[0].RunningNodes(ctx); err != nil {
			t.Fatal(err)
		}
		slices.Sort(running)
		if slices.Equal(running, want) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(running, want) {
		t.Fatalf("after killing %s, running nodes %v, want %v", c.Nodes[1].Name(), running, want)
	}
	if err := c.Nodes[1].Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.waitFormed(ctx); err != nil {
		t.Fatal(err)
	}
}
