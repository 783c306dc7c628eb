package runtime_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
	"go.uber.org/goleak"
)

// TestDiamond: src -> fan -> (evens, odds) -> merge -> sink, with the odd
// branch dead-lettering multiples of 7 into a sink that also reads a
// normal branch through a merge. Every record is accounted for once and
// acknowledged.
func TestDiamond(t *testing.T) {
	src := &gen{count: 2000, per: 40}
	out, dead := &collect{delay: 20 * time.Microsecond}, &collect{}
	keep := func(odd bool) flowruntime.Processor {
		return proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
			i := field(r)
			if (i%2 == 1) != odd {
				return nil
			}
			if odd && i%7 == 0 {
				return errBoom
			}
			emit(r)
			return nil
		})
	}
	g := &flowruntime.Graph{Pipeline: "diamond",
		Nodes: []*flowruntime.Node{
			{Name: "src", Source: src},
			{Name: "fan", Fanout: &flowruntime.Fanout{Mode: flowruntime.Broadcast}},
			{Name: "evens", Processor: keep(false)},
			{Name: "odds", Processor: keep(true), OnError: onerror.Policy{Mode: onerror.DeadLetter}},
			{Name: "m", Merge: true},
			{Name: "out", Sink: out},
			{Name: "dead", Sink: dead},
		},
		Edges: []*flowruntime.Edge{
			{From: "src", To: "fan", Capacity: 32},
			{From: "fan", To: "evens", Capacity: 16},
			{From: "fan", To: "odds", Capacity: 16},
			{From: "evens", To: "m", Capacity: 16},
			{From: "odds", To: "m", Capacity: 16},
			{From: "m", To: "out", Capacity: 16},
			{From: "odds", To: "dead", Capacity: 4, DeadLetter: true},
		},
	}
	ex := run(t, g, flowruntime.Options{BatchSize: 8})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, r := range out.records() {
		ids = append(ids, int(field(r)))
	}
	for _, r := range dead.records() {
		if r.Fields["stage"] != "odds" || field(r)%14 != 7 {
			t.Errorf("dead letter %v", r.Fields)
		}
		ids = append(ids, int(field(r)))
	}
	sort.Ints(ids)
	if len(ids) != 2000 {
		t.Fatalf("%d records out, want 2000", len(ids))
	}
	for k, id := range ids {
		if id != k {
			t.Fatalf("record %d missing or doubled", k)
		}
	}
	if src.acked.Load() != 2000 || ex.Stats().Acks != 0 {
		t.Errorf("acked %d of 2000", src.acked.Load())
	}
	if peak, bound := ex.Stats().PeakInFlight, ex.Stats().Capacity(); peak > bound {
		t.Errorf("peak %d > %d", peak, bound)
	}
}

// TestKillWithCallsInFlight: Kill ends calls through their context and
// leaves no goroutine.
func TestKillWithCallsInFlight(t *testing.T) {
	started := make(chan struct{}, 100)
	c := callFunc(func(ctx context.Context, r flowruntime.Record) (flowruntime.Record, error) {
		started <- struct{}{}
		<-ctx.Done()
		return r, ctx.Err()
	})
	ex := run(t, callerGraph(&gen{count: -1, per: 5}, c, &collect{}), flowruntime.Options{})
	for range 4 {
		<-started
	}
	ex.Kill()
	if err := ex.Wait(); !errors.Is(err, flowruntime.ErrKilled) {
		t.Fatalf("Wait = %v", err)
	}
	goleak.VerifyNone(t)
}

type callFunc func(ctx context.Context, r flowruntime.Record) (flowruntime.Record, error)

func (f callFunc) Call(ctx context.Context, r flowruntime.Record) (flowruntime.Record, error) {
	return f(ctx, r)
}
func (callFunc) Concurrency() int { return 4 }
func (callFunc) Ordered() bool    { return false }
