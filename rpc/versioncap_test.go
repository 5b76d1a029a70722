package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// notSet marks an option that a case does not give, as oslo's _notset.
const notSet = "<notset>"

// The cases of oslo.messaging's TestVersionCap, for calls and casts. ""
// stands for Python's None.
func TestVersionCapMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                                     string
		cap, prepareCap, version, prepareVersion string
		ok                                       bool
	}{
		{"all_none", "", notSet, "", notSet, true},
		{"ctor_cap_ok", "1.1", notSet, "1.0", notSet, true},
		{"ctor_cap_override_ok", "2.0", "1.1", "1.0", "1.0", true},
		{"ctor_cap_override_none_ok", "1.1", "", "1.0", notSet, true},
		{"ctor_cap_minor_fail", "1.0", notSet, "1.1", notSet, false},
		{"ctor_cap_major_fail", "2.0", notSet, "", "1.0", false},
		{"ctor_cap_none_version_ok", "", notSet, "1.0", notSet, true},
		{"ctor_cap_version_none_fail", "1.0", notSet, "", notSet, false},
	}
	tr := newTransport(t)
	for _, call := range []bool{true, false} {
		for _, tc := range tests {
			name := tc.name + "/cast"
			if call {
				name = tc.name + "/call"
			}
			t.Run(name, func(t *testing.T) {
				c := newClient(t, tr, messaging.Target{Topic: "nobody_listens", Version: tc.version}, rpc.WithVersionCap(tc.cap))
				var opts []rpc.CallOption
				if tc.prepareCap != notSet {
					opts = append(opts, rpc.VersionCap(tc.prepareCap))
				}
				if tc.prepareVersion != notSet {
					opts = append(opts, rpc.Version(tc.prepareVersion))
				}
				c = c.Prepare(opts...)
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				var err error
				if call {
					// Nobody answers: a call that passes the cap times out.
					err = c.Call(ctx, "foo", nil, nil)
					if tc.ok && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Call = %v, want it sent (and timed out)", err)
					}
				} else {
					err = c.Cast(ctx, "foo", nil)
					if tc.ok && err != nil {
						t.Errorf("Cast = %v, want nil", err)
					}
				}
				if !tc.ok && !errors.Is(err, rpc.ErrVersionCap) {
					t.Errorf("error = %v, want ErrVersionCap", err)
				}
			})
		}
	}
}

// The cases of oslo.messaging's TestCanSendVersion.
func TestCanSendVersionMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                                     string
		cap, prepareCap, version, prepareVersion string
		canSendVersion                           string
		want                                     bool
	}{
		{"all_none", "", notSet, "", notSet, notSet, true},
		{"ctor_cap_ok", "1.1", notSet, "1.0", notSet, notSet, true},
		{"ctor_cap_override_ok", "2.0", "1.1", "1.0", "1.0", notSet, true},
		{"ctor_cap_override_none_ok", "1.1", "", "1.0", notSet, notSet, true},
		{"ctor_cap_can_send_ok", "1.1", "", "1.0", notSet, "1.1", true},
		{"ctor_cap_can_send_none_ok", "1.1", "", "1.0", notSet, "", true},
		{"ctor_cap_minor_fail", "1.0", notSet, "1.1", notSet, notSet, false},
		{"ctor_cap_major_fail", "2.0", notSet, "", "1.0", notSet, false},
		{"ctor_cap_none_version_ok", "", notSet, "1.0", notSet, notSet, true},
		{"ctor_cap_version_none_fail", "1.0", notSet, "", notSet, notSet, false},
		{"ctor_cap_version_can_send_none_fail", "1.0", notSet, "1.0", notSet, "", false},
	}
	tr := newTransport(t)
	for _, tc := range tests {
		c := newClient(t, tr, messaging.Target{Topic: "t", Version: tc.version}, rpc.WithVersionCap(tc.cap))
		var opts []rpc.CallOption
		if tc.prepareCap != notSet {
			opts = append(opts, rpc.VersionCap(tc.prepareCap))
		}
		if tc.prepareVersion != notSet {
			opts = append(opts, rpc.Version(tc.prepareVersion))
		}
		if len(opts) > 0 {
			c = c.Prepare(opts...)
		}
		v := tc.canSendVersion
		if v == notSet {
			v = c.Target().Version // oslo's can_send_version() default
		}
		if got := c.CanSendVersion(v); got != tc.want {
			t.Errorf("%s: CanSendVersion(%q) = %v, want %v", tc.name, v, got, tc.want)
		}
		if got := c.Prepare().CanSendVersion(v); got != tc.want {
			t.Errorf("%s: Prepare().CanSendVersion(%q) = %v, want %v", tc.name, v, got, tc.want)
		}
	}
}
