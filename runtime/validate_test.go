package runtime_test

import (
	"context"
	"strings"
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

func TestStartRejectsBadGraphs(t *testing.T) {
	src := &gen{count: 1}
	sink := &collect{}
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	for _, tc := range []struct {
		name  string
		graph *flowruntime.Graph
		want  []string
	}{
		{"empty", &flowruntime.Graph{Pipeline: "p"}, []string{`pipeline "p": invalid graph: the graph has no nodes`}},
		{"two kinds", &flowruntime.Graph{Pipeline: "p",
			Nodes: []*flowruntime.Node{{Name: "x", Source: src, Sink: sink}},
		}, []string{`node "x" must be exactly one of source, processor, caller, sink, fanout or merge (it is 2)`}},
		{"duplicate and unknown", &flowruntime.Graph{Pipeline: "p",
			Nodes: []*flowruntime.Node{{Name: "s", Source: src}, {Name: "s", Sink: sink}},
			Edges: []*flowruntime.Edge{{From: "s", To: "nowhere"}},
		}, []string{`two nodes are named "s"`, `edge s -> nowhere: no node named "nowhere"`}},
		{"dangling source and sink without input", &flowruntime.Graph{Pipeline: "p",
			Nodes: []*flowruntime.Node{{Name: "s", Source: src}, {Name: "k", Sink: sink}},
		}, []string{`node "s" has 0 outputs, want 1`, `node "k" has 0 inputs, want 1`}},
		{"bad modes", &flowruntime.Graph{Pipeline: "p",
			Nodes: []*flowruntime.Node{
				{Name: "s", Source: src},
				{Name: "f", Fanout: &flowruntime.Fanout{Mode: flowruntime.Hash}},
				{Name: "k", Sink: sink, OnError: onerror.Policy{Mode: 42}},
			},
			Edges: []*flowruntime.Edge{{From: "s", To: "f", WhenFull: 42}, {From: "f", To: "k"}},
		}, []string{`node "f": a hash fanout needs a Router`, `unknown error policy Mode(42)`, `unknown when_full overflow.Mode(42)`, `edge s -> f: only an output of a fanout may be lossy`}},
		{"dead letter without edge", &flowruntime.Graph{Pipeline: "p",
			Nodes: []*flowruntime.Node{
				{Name: "s", Source: src},
				{Name: "k", Sink: sink, OnError: onerror.Policy{Mode: onerror.DeadLetter}},
			},
			Edges: []*flowruntime.Edge{{From: "s", To: "k", Capacity: -1}},
		}, []string{`node "k": on_error dead_letter needs a dead-letter edge`, `edge s -> k: negative capacity -1`}},
		{"cycle", &flowruntime.Graph{Pipeline: "p",
			Nodes: []*flowruntime.Node{
				{Name: "s", Source: src},
				{Name: "m", Merge: true},
				{Name: "a", Processor: pass},
				{Name: "f", Fanout: &flowruntime.Fanout{}},
				{Name: "k", Sink: sink},
			},
			Edges: []*flowruntime.Edge{{From: "s", To: "m"}, {From: "m", To: "a"}, {From: "a", To: "f"}, {From: "f", To: "m"}, {From: "f", To: "k"}},
		}, []string{`the graph has a cycle through ["m" "a" "f"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := flowruntime.Start(context.Background(), tc.graph, flowruntime.Options{})
			if err == nil {
				ex.Kill()
				_ = ex.Wait()
				t.Fatal("Start accepted the graph")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
			if verr := flowruntime.Validate(tc.graph); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate = %v, want the same error as Start", verr)
			}
		})
	}
}

// TestByteLimit: an edge limited in bytes never holds more than its limit.
func TestByteLimit(t *testing.T) {
	src := sourceFunc(func(ctx context.Context, out flowruntime.Emitter) error {
		for i := range 400 {
			rec := flowruntime.Record{Fields: map[string]any{"i": int64(i), "pad": strings.Repeat("x", 100+i%50)}}
			if err := out.Emit(ctx, []flowruntime.Record{rec}, nil); err != nil {
				return nil
			}
		}
		return nil
	})
	sink := &collect{delay: 20_000}
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	g := chain(1000, src, sink, pass)
	const limit = 2000
	for _, e := range g.Edges {
		e.Bytes = limit
	}
	ex := run(t, g, flowruntime.Options{BatchSize: 64})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := sink.len(); n != 400 {
		t.Fatalf("got %d records", n)
	}
	st := ex.Stats()
	if st.PeakBytesInFlight > 2*limit || st.PeakBytesInFlight < limit/2 {
		t.Errorf("peak bytes %d, want in [%d, %d] (two edges of %d)", st.PeakBytesInFlight, limit/2, 2*limit, limit)
	}
	if st.PeakInFlight > 2*limit/200 {
		t.Errorf("peak records %d: the byte limit did not bind", st.PeakInFlight)
	}
	if st.BytesInFlight != 0 {
		t.Errorf("bytes in flight after the end: %d", st.BytesInFlight)
	}
}

func TestRecordSize(t *testing.T) {
	small := flowruntime.RecordSize(flowruntime.Record{Fields: map[string]any{"a": int64(1)}})
	big := flowruntime.RecordSize(flowruntime.Record{Fields: map[string]any{"a": int64(1), "b": strings.Repeat("x", 1000), "c": []any{map[string]any{"d": "e"}}}})
	if small <= 0 || big < small+1000 {
		t.Errorf("sizes %d and %d", small, big)
	}
}
