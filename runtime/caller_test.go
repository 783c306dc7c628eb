package runtime_test

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// sleeper is a Caller that sleeps a random short time per record and tracks
// how many calls run at once.
type sleeper struct {
	conc    int
	ordered bool
	running atomic.Int64
	most    atomic.Int64
	fail    func(i int64, attempt int64) error
	tries   atomic.Int64
}

func (s *sleeper) Call(ctx context.Context, rec flowruntime.Record) (flowruntime.Record, error) {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	try := s.tries.Add(1)
	select {
	case <-time.After(time.Duration(rand.IntN(300)) * time.Microsecond):
	case <-ctx.Done():
		return rec, ctx.Err()
	}
	if s.fail != nil {
		if err := s.fail(field(rec), try); err != nil {
			return rec, err
		}
	}
	out := flowruntime.Record{Fields: map[string]any{"i": field(rec), "result": field(rec) * 10}, Meta: rec.Meta}
	return out, nil
}

func (s *sleeper) Concurrency() int { return s.conc }
func (s *sleeper) Ordered() bool    { return s.ordered }

func callerGraph(src flowruntime.Source, c flowruntime.Caller, sink flowruntime.Sink) *flowruntime.Graph {
	return &flowruntime.Graph{
		Pipeline: "p",
		Nodes: []*flowruntime.Node{
			{Name: "src", Source: src},
			{Name: "call", Caller: c},
			{Name: "sink", Sink: sink},
		},
		Edges: []*flowruntime.Edge{
			{From: "src", To: "call", Capacity: 64},
			{From: "call", To: "sink", Capacity: 64},
		},
	}
}

func TestCallerConcurrency(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		name := "unordered"
		if ordered {
			name = "ordered"
		}
		t.Run(name, func(t *testing.T) {
			c := &sleeper{conc: 6, ordered: ordered}
			src := &gen{count: 600, per: 20}
			sink := &collect{}
			ex := run(t, callerGraph(src, c, sink), flowruntime.Options{BatchSize: 32})
			if err := ex.Wait(); err != nil {
				t.Fatal(err)
			}
			if m := c.most.Load(); m != 6 {
				t.Errorf("at most %d calls ran at once, want exactly 6", m)
			}
			got := sink.records()
			if len(got) != 600 {
				t.Fatalf("got %d records", len(got))
			}
			seen := make(map[int64]bool)
			inOrder := true
			for k, r := range got {
				if r.Fields["result"] != field(r)*10 {
					t.Fatalf("record %v has no result", r.Fields)
				}
				seen[field(r)] = true
				if field(r) != int64(k) {
					inOrder = false
				}
			}
			if len(seen) != 600 {
				t.Errorf("%d distinct records, want 600", len(seen))
			}
			if ordered && !inOrder {
				t.Error("ordered caller emitted out of order")
			}
			if !ordered && inOrder {
				t.Log("unordered caller happened to keep the order")
			}
			if src.acked.Load() != 600 {
				t.Errorf("acked %d of 600", src.acked.Load())
			}
		})
	}
}

// TestCallerRetryThenDeadLetter: a call failing twice succeeds on its
// third try; one that always fails is dead-lettered.
func TestCallerRetryThenDeadLetter(t *testing.T) {
	attempts := map[int64]*atomic.Int64{5: {}, 7: {}}
	c := &sleeper{conc: 3, ordered: true}
	c.fail = func(i, _ int64) error {
		a, ok := attempts[i]
		if !ok {
			return nil
		}
		if n := a.Add(1); i == 7 || n <= 2 {
			return errBoom
		}
		return nil
	}
	sink, dead := &collect{}, &collect{}
	g := callerGraph(&gen{count: 20, per: 20}, c, sink)
	g.Nodes[1].OnError = onerror.Policy{Mode: onerror.Retry, Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	g.Nodes = append(g.Nodes, &flowruntime.Node{Name: "dead", Sink: dead})
	g.Edges = append(g.Edges, &flowruntime.Edge{From: "call", To: "dead", Capacity: 8, DeadLetter: true})
	ex := run(t, g, flowruntime.Options{})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := sink.len(); n != 19 {
		t.Errorf("sink got %d records, want 19", n)
	}
	d := dead.records()
	if len(d) != 1 || field(d[0]) != 7 || d[0].Fields["error"] != "boom" || d[0].Fields["stage"] != "call" {
		t.Fatalf("dead letters = %v", d)
	}
	st, _ := ex.Stats().Node("call")
	if st.Retries != 2+3 || st.DeadLettered != 1 {
		t.Errorf("retries %d (want 5), dead-lettered %d (want 1)", st.Retries, st.DeadLettered)
	}
	if attempts[7].Load() != 4 {
		t.Errorf("record 7 tried %d times, want 4", attempts[7].Load())
	}
}
