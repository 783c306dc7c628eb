package runtime_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// oddRejecter writes the records with an even i and rejects the odd ones,
// each with a permanent error of its own.
type oddRejecter struct{ collect }

func (s *oddRejecter) Write(ctx context.Context, recs []flowruntime.Record) error {
	var f onerror.Failures
	var good []flowruntime.Record
	for i, r := range recs {
		if field(r)%2 == 1 {
			f.Fail(i, onerror.Permanent(errors.New("odd")))
			continue
		}
		good = append(good, r)
	}
	if err := s.collect.Write(ctx, good); err != nil {
		return err
	}
	return f.Err()
}

// countingSource is a gen that keeps a counter of its own.
type countingSource struct{ gen }

func (s *countingSource) Counts() []flowruntime.Count {
	return []flowruntime.Count{{Name: "emitted_here", Value: s.emitted.Load()}, {Name: "never", Value: 0}}
}

func TestStatsCountEveryStage(t *testing.T) {
	src := &countingSource{gen{count: 100, per: 10}}
	out, dead := &oddRejecter{}, &collect{}
	g := &flowruntime.Graph{Pipeline: "p",
		Nodes: []*flowruntime.Node{
			{Name: "src", Source: src},
			{Name: "keep", Processor: proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })},
			{Name: "out", Sink: out, OnError: onerror.Policy{Mode: onerror.DeadLetter, Attempts: 1}},
			{Name: "dead", Sink: dead},
		},
		Edges: []*flowruntime.Edge{
			{From: "src", To: "keep", Capacity: 16},
			{From: "keep", To: "out", Capacity: 16},
			{From: "out", To: "dead", Capacity: 16, DeadLetter: true},
		},
	}
	ex := run(t, g, flowruntime.Options{BatchSize: 8})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	st := ex.Stats()
	// A sink with a dead letter counts among the sinks, and so does the
	// dead-letter sink.
	if got := st.SinkRecords(); got != 100 {
		t.Errorf("SinkRecords = %d, want 100 (50 written, 50 dead-lettered)", got)
	}
	if got := st.SourceRecords(); got != 100 {
		t.Errorf("SourceRecords = %d, want 100", got)
	}
	want := map[string][]flowruntime.Count{
		"src":  {{Name: "out", Value: 100}, {Name: "emitted_here", Value: 100}},
		"keep": {{Name: "in", Value: 100}, {Name: "out", Value: 100}},
		"out":  {{Name: "in", Value: 100}, {Name: "out", Value: 50}, {Name: "errors", Value: 50}, {Name: "dead_lettered", Value: 50}},
		"dead": {{Name: "in", Value: 50}, {Name: "out", Value: 50}},
	}
	kinds := map[string]flowruntime.Kind{"src": flowruntime.KindSource, "keep": flowruntime.KindProcessor,
		"out": flowruntime.KindSink, "dead": flowruntime.KindSink}
	for _, n := range st.Nodes {
		if got := n.NonZero(); !slices.Equal(got, want[n.Name]) {
			t.Errorf("%s: NonZero = %v, want %v", n.Name, got, want[n.Name])
		}
		if n.Kind != kinds[n.Name] {
			t.Errorf("%s: kind %v, want %v", n.Name, n.Kind, kinds[n.Name])
		}
	}
}
