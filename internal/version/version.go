// Package version implements oslo.messaging's "major.minor[.revision]"
// API version rules.
package version

import (
	"fmt"
	"strconv"
	"strings"
)

// V is a parsed version. Rev is 0 when absent.
type V struct{ Major, Minor, Rev int }

// Parse parses "X.Y" or "X.Y.Z" with non-negative decimal integers. Its
// error text is oslo's: "Version must contain a major and minor integer.
// Got 1".
func Parse(s string) (V, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return V{}, fmt.Errorf("version must contain a major and minor integer, got %q", s)
	}
	var n [3]int
	for i, p := range parts {
		if p == "" || strings.TrimLeft(p, "0123456789") != "" {
			return V{}, fmt.Errorf("version must contain a major and minor integer, got %q", s)
		}
		x, err := strconv.Atoi(p)
		if err != nil {
			return V{}, fmt.Errorf("version must contain a major and minor integer, got %q", s)
		}
		n[i] = x
	}
	return V{n[0], n[1], n[2]}, nil
}

// Compatible is oslo's version_is_compatible(imp, req): an
// implementation at version imp can serve a request for version req when
// the majors are equal and req's minor (then revision) is not higher.
// An empty imp is compatible with everything; an empty req with nothing.
// Unparsable versions are incompatible.
func Compatible(imp, req string) bool {
	if imp == "" {
		return true
	}
	if req == "" {
		return false
	}
	i, err := Parse(imp)
	if err != nil {
		return false
	}
	r, err := Parse(req)
	if err != nil {
		return false
	}
	if i.Major != r.Major || r.Minor > i.Minor {
		return false
	}
	if r.Minor == i.Minor && r.Rev > i.Rev {
		return false
	}
	return true
}
