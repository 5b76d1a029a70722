package version

import "testing"

// Cases from oslo.messaging's VersionIsCompatibleTestCase, plus the
// empty-version rules of version_is_compatible.
func TestCompatible(t *testing.T) {
	t.Parallel()
	tests := []struct {
		imp, req string
		want     bool
	}{
		{"1.23", "1.23", true},
		{"1.24", "1.23", true},
		{"1.22", "1.23", false},
		{"2.23", "1.23", false},
		{"1.23", "2.23", false},
		{"1.23", "1.23.1", false},
		{"1.23.1", "1.23.2", false},
		{"1.23.2", "1.23.1", true},
		{"1.24", "1.23.1", true},
		{"1.23.0", "1.23", true},
		{"", "1.0", true},
		{"", "", true},
		{"1.0", "", false},
		{"1.5", "1.0", true},
		{"1.5", "1.6", false},
		{"x.y", "1.0", false},
		{"1.0", "1", false},
	}
	for _, tc := range tests {
		if got := Compatible(tc.imp, tc.req); got != tc.want {
			t.Errorf("Compatible(%q, %q) = %v, want %v", tc.imp, tc.req, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "1", "5", "5.a", "5.5.a", "1.2.3.4", "-1.0", "1.-2", "1..2", " 1.2", "+1.2"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
	for in, want := range map[string]V{"1.0": {1, 0, 0}, "2.13": {2, 13, 0}, "1.23.4": {1, 23, 4}, "01.2": {1, 2, 0}} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
}

func FuzzCompatible(f *testing.F) {
	for _, s := range []string{"1.0", "1.23.1", "2.0", "", "x"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, imp, req string) {
		got := Compatible(imp, req)
		if imp != "" && req != "" && imp == req {
			if _, err := Parse(imp); err == nil && !got {
				t.Errorf("Compatible(%q, %q) = false for equal valid versions", imp, req)
			}
		}
	})
}
