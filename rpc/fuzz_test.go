package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

type fuzzInner struct {
	Name  string            `json:"name"`
	Tags  []string          `json:"tags"`
	Extra map[string]string `json:"extra"`
}

type fuzzArgs struct {
	ID      string         `json:"instance_uuid"`
	N       int            `json:"n"`
	Ratio   float64        `json:"ratio"`
	On      *bool          `json:"on"`
	Inner   fuzzInner      `json:"inner"`
	List    []fuzzInner    `json:"list"`
	Any     any            `json:"any"`
	Map     map[string]any `json:"map"`
	RawArgs json.RawMessage
}

// FuzzHandleArgs feeds arbitrary keyword arguments to handlers made by
// Handle with several argument types: decoding never panics, and either
// the handler runs or the call fails with the arguments error that the
// caller sees as builtins.TypeError.
func FuzzHandleArgs(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"instance_uuid": "i-1", "n": 5, "ratio": 0.5, "on": true}`,
		`{"inner": {"name": "x", "tags": ["a", "b"], "extra": {"k": "v"}}, "list": [{"name": "y"}]}`,
		`{"any": [1, "2", {"3": null}], "map": {"a": {"b": [true]}}}`,
		`{"n": "five"}`, `{"n": 1e400}`, `[1, 2]`, `"text"`, `null`, `{"n": 5`, `{"list": {}}`,
		`{"instance_uuid": "\ud800"}`, `{"a":` + `[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]` + `}`,
	} {
		f.Add([]byte(s))
	}
	ep := &Endpoint{}
	var ran int
	Handle(ep, "typed", func(_ context.Context, a fuzzArgs) (fuzzArgs, error) { ran++; return a, nil })
	Handle(ep, "mapped", func(_ context.Context, a map[string]any) (int, error) { ran++; return len(a), nil })
	Handle(ep, "raw", func(_ context.Context, a json.RawMessage) (int, error) { ran++; return len(a), nil })
	Handle(ep, "slice", func(_ context.Context, a []int) (int, error) { ran++; return len(a), nil })
	f.Fuzz(func(t *testing.T, args []byte) {
		for _, m := range ep.Methods() {
			before := ran
			res, err := ep.methods[m].ServeRPC(context.Background(), &Request{Method: m, Args: args})
			if err == nil {
				if ran != before+1 || res == nil {
					t.Fatalf("%s(%q): no error, but the handler did not run", m, args)
				}
				continue
			}
			var ae *argsError
			if !errors.As(err, &ae) {
				t.Fatalf("%s(%q): error %v is not an arguments error", m, args, err)
			}
			if ran != before {
				t.Fatalf("%s(%q): the handler ran although the arguments did not decode", m, args)
			}
			if got := failureFor(err, nil); got.Class != "TypeError" || got.Module != "builtins" {
				t.Fatalf("%s(%q): the caller would see %s.%s, want builtins.TypeError", m, args, got.Module, got.Class)
			}
		}
	})
}
