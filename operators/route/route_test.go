package route_test

import (
	"strings"
	"testing"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

type M = map[string]any

func TestFanoutModes(t *testing.T) {
	for mode, want := range map[string]flowruntime.FanoutMode{"broadcast": flowruntime.Broadcast, "round_robin": flowruntime.RoundRobin} {
		n := optest.Build(t, optest.Stage(t, "fanout", "fanout", "f", M{"mode": mode}), optest.Env(nil))
		if n.Fanout == nil || n.Fanout.Mode != want || n.Fanout.Router != nil {
			t.Errorf("mode %s built %+v", mode, n.Fanout)
		}
	}
	// An implicit fanout has no options at all.
	st := optest.Stage(t, "fanout", "fanout", "logs.fanout", nil)
	st.Options = nil
	st.Implicit = true
	n := optest.Build(t, st, optest.Env(nil))
	if n.Fanout == nil || n.Fanout.Mode != flowruntime.Broadcast {
		t.Errorf("implicit fanout built %+v", n.Fanout)
	}
}

func TestFanoutHash(t *testing.T) {
	n := optest.Build(t, optest.Stage(t, "fanout", "fanout", "f", M{"mode": "hash", "key": "user"}), optest.Env(nil))
	r := n.Fanout.Router
	if r == nil {
		t.Fatal("hash mode built no router")
	}
	seen := map[int]bool{}
	for _, user := range []any{"ann", "bob", "cid", "dan", "eve", int64(7), 7.0, nil, []any{"x"}} {
		rec := flowruntime.Record{Fields: M{"user": user}}
		first, err := r.Route(rec, 3)
		if err != nil {
			t.Fatal(err)
		}
		if first < 0 || first >= 3 {
			t.Fatalf("Route = %d, out of [0, 3)", first)
		}
		seen[first] = true
		for range 3 {
			if again, _ := r.Route(rec, 3); again != first {
				t.Fatalf("key %v routed to %d then %d", user, first, again)
			}
		}
	}
	if len(seen) < 2 {
		t.Errorf("nine keys all went to one output: %v", seen)
	}
	a, _ := r.Route(flowruntime.Record{Fields: M{"user": int64(7)}}, 5)
	b, _ := r.Route(flowruntime.Record{Fields: M{"user": 7.0}}, 5)
	if a != b {
		t.Errorf("7 and 7.0 routed apart: %d, %d", a, b)
	}
}

func TestFanoutErrors(t *testing.T) {
	for _, opts := range []M{{"mode": "hash"}, {"mode": "broadcast", "key": "x"}} {
		_, err := all.Registry().Build(optest.Stage(t, "fanout", "fanout", "f", opts), optest.Env(nil))
		if err == nil || !strings.Contains(err.Error(), "key") {
			t.Errorf("fanout %v: %v, want an error about key", opts, err)
		}
	}
}

func TestMerge(t *testing.T) {
	n := optest.Build(t, optest.Stage(t, "merge", "merge", "m", nil), optest.Env(nil))
	if !n.Merge || n.Name != "m" {
		t.Errorf("merge built %+v", n)
	}
}
