package transform_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/internal/optest"
)

// TestFromFlow builds each kind from a .flow snippet through the real
// parser and planner and runs records through it.
func TestFromFlow(t *testing.T) {
	in := optest.Records(
		M{"host": "a", "n": int64(1)},
		M{"host": "b", "n": int64(2)},
		M{"host": "a", "n": int64(3)},
	)
	tests := []struct {
		stage string
		want  []M
	}{
		{`filter "s" {
    from  = in
    where = n > 1 // a comment
  }`, []M{{"host": "b", "n": int64(2)}, {"host": "a", "n": int64(3)}}},
		{`map "s" {
    from = in
    to   = {host: host}
    set {
      twice = n * 2
    }
  }`, []M{{"host": "a", "twice": int64(2)}, {"host": "b", "twice": int64(4)}, {"host": "a", "twice": int64(6)}}},
		{`take "s" {
    from  = in
    count = 1
  }`, []M{{"host": "a", "n": int64(1)}}},
		{`skip "s" {
    from  = in
    count = 2
  }`, []M{{"host": "a", "n": int64(3)}}},
		{`dedupe "s" {
    from = in
    key  = host
  }`, []M{{"host": "a", "n": int64(1)}, {"host": "b", "n": int64(2)}}},
		{`reduce "s" {
    from  = in
    group = host
    step  = acc + n
  }`, []M{{"key": "a", "value": int64(4)}, {"key": "b", "value": int64(2)}}},
		{`batch "s" {
    from = in
    size = 2
  }`, []M{{"count": int64(2), "records": []any{M{"host": "a", "n": int64(1)}, M{"host": "b", "n": int64(2)}}},
			{"count": int64(1), "records": []any{M{"host": "a", "n": int64(3)}}}}},
		{`throttle "s" {
    from = in
    rate = 100
  }`, []M{{"host": "a", "n": int64(1)}, {"host": "b", "n": int64(2)}, {"host": "a", "n": int64(3)}}},
	}
	for _, tt := range tests {
		src := fmt.Sprintf(`pipeline "p" {
  source "in" {
    kind = "generate"
  }
  %s
  sink "out" {
    from = s
    kind = "discard"
  }
}
`, tt.stage)
		st := optest.PlanStage(t, src, "s")
		t.Run(st.Kind, func(t *testing.T) {
			n := optest.Build(t, st, optest.Env(nil))
			var recs = make([]M, len(in))
			for i, r := range in {
				recs[i] = M{}
				for k, v := range r.Fields {
					recs[i][k] = v
				}
			}
			got := optest.Process(t, n.Processor, optest.Records(recs...)...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
