package runtime_test

import (
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// first passes on the first n records and then finishes.
type first struct{ left int }

func (f *first) Process(r flowruntime.Record, emit func(flowruntime.Record)) error {
	if f.left > 0 {
		f.left--
		emit(r)
	}
	return nil
}

func (f *first) Finished() bool { return f.left == 0 }

func TestFinisherEndsAnEndlessPipeline(t *testing.T) {
	for _, fused := range []bool{true, false} {
		name := map[bool]string{true: "fused", false: "unfused"}[fused]
		t.Run(name, func(t *testing.T) {
			src := &gen{count: -1, per: 10}
			sink := &collect{}
			double := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
				r.Fields["i"] = field(r) * 2
				emit(r)
				return nil
			})
			g := chain(64, src, sink, &first{left: 25}, double)
			ex := run(t, g, flowruntime.Options{NoFusion: !fused})
			waitDone(t, ex)
			if err := ex.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			recs := sink.records()
			if len(recs) != 25 {
				t.Fatalf("sink got %d records, want 25", len(recs))
			}
			for i, r := range recs {
				if field(r) != int64(2*i) {
					t.Fatalf("record %d = %d, want %d", i, field(r), 2*i)
				}
			}
			// Everything the source emitted is acknowledged, taken or not.
			if src.acked.Load() != src.emitted.Load() {
				t.Errorf("acknowledged %d of %d emitted records", src.acked.Load(), src.emitted.Load())
			}
		})
	}
}

func TestFinishedBranchDoesNotEndTheOthers(t *testing.T) {
	src := &gen{count: 5000, per: 50}
	all, some := &collect{}, &collect{}
	g := &flowruntime.Graph{
		Pipeline: "p",
		Nodes: []*flowruntime.Node{
			{Name: "src", Source: src},
			{Name: "copy", Fanout: &flowruntime.Fanout{Mode: flowruntime.Broadcast}},
			{Name: "take", Processor: &first{left: 3}},
			{Name: "some", Sink: some},
			{Name: "all", Sink: all},
		},
		Edges: []*flowruntime.Edge{
			{From: "src", To: "copy", Capacity: 64},
			{From: "copy", To: "take", Capacity: 64},
			{From: "take", To: "some", Capacity: 64},
			{From: "copy", To: "all", Capacity: 64},
		},
	}
	ex := run(t, g, flowruntime.Options{})
	waitDone(t, ex)
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if n := len(some.records()); n != 3 {
		t.Errorf("the taking branch got %d records, want 3", n)
	}
	if n := len(all.records()); n != 5000 {
		t.Errorf("the other branch got %d records, want all 5000", n)
	}
}

func waitDone(t *testing.T, ex *flowruntime.Execution) {
	t.Helper()
	select {
	case <-ex.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the execution did not finish")
	}
}
