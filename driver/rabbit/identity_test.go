package rabbit

import (
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// TestRabbitStampUserID checks that with stamp_user_id a request carries
// the sender's login as its validated user_id, which the receiver sees
// as SenderUserID, and that without it the receiver sees none.
func TestRabbitStampUserID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	want := e.base.Hosts[0].Username
	if want == "" {
		want = DefaultUser
	}
	for _, tc := range []struct {
		stamp string
		want  string
	}{{"true", want}, {"false", ""}} {
		addr := driver.Address{Exchange: e.name("ex"), Topic: e.name("ident-" + tc.stamp)}
		srv := e.open()
		l, err := srv.Listen(ctx, addr, driver.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		serve(t, l, func(d driver.Delivery) { got <- d.Request().SenderUserID })
		cli := e.open("stamp_user_id", tc.stamp)
		if err := cli.Cast(ctx, addr, &driver.Request{Method: "m", UniqueID: wire.NewID()}, driver.SendOptions{}); err != nil {
			t.Fatalf("stamp_user_id=%s: Cast: %v", tc.stamp, err)
		}
		select {
		case id := <-got:
			if id != tc.want {
				t.Errorf("stamp_user_id=%s: the server saw sender %q, want %q", tc.stamp, id, tc.want)
			}
		case <-ctx.Done():
			t.Fatalf("stamp_user_id=%s: the cast never arrived", tc.stamp)
		}
	}
}
