package runtime_test

import (
	"context"
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/overflow"
)

// heldSource is a gen that starts emitting once start is closed, so that a
// test can attach taps first.
type heldSource struct {
	gen
	start chan struct{}
}

func (h *heldSource) Run(ctx context.Context, out flowruntime.Emitter) error {
	select {
	case <-h.start:
	case <-ctx.Done():
		return nil
	}
	return h.gen.Run(ctx, out)
}

// tapped reads what t sampled once the execution has ended.
func tapped(t *testing.T, ex *flowruntime.Execution, tap *flowruntime.Tap) []flowruntime.Record {
	t.Helper()
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	var recs []flowruntime.Record
	for {
		select {
		case r := <-tap.Records():
			recs = append(recs, r)
		default:
			return recs
		}
	}
}

// increasing checks that recs are records of gen in increasing order,
// each seen once, and returns their "i".
func increasing(t *testing.T, what string, recs []flowruntime.Record) []int64 {
	t.Helper()
	var is []int64
	for k, r := range recs {
		i := field(r)
		if k > 0 && i <= is[k-1] {
			t.Fatalf("%s: record %d after %d", what, i, is[k-1])
		}
		is = append(is, i)
	}
	return is
}

// TestTapSamplesEachBatch taps every stage of src -> a -> b -> sink (a and
// b fused onto one goroutine), src emitting batches of 100: every tap gets
// the first record of each batch leaving its stage, as the stage made it,
// and a tap closed at once nor a stage that does not exist get anything.
func TestTapSamplesEachBatch(t *testing.T) {
	const n, per = 1000, 100
	src := &heldSource{gen: gen{count: n, per: per}, start: make(chan struct{})}
	add := func(k string, v int64) proc {
		return func(r flowruntime.Record, emit func(flowruntime.Record)) error {
			r.Fields[k] = v
			emit(r)
			return nil
		}
	}
	sink := &collect{}
	ex := run(t, chain(1024, src, sink, add("a", 1), add("b", 2)), flowruntime.Options{})
	if _, err := ex.Tap("nope", 0); err == nil {
		t.Error("Tap of an unknown stage: no error")
	}
	taps := map[string]*flowruntime.Tap{}
	for _, stage := range []string{"src", "a", "b", "sink"} {
		tap, err := ex.Tap(stage, n)
		if err != nil {
			t.Fatal(err)
		}
		taps[stage] = tap
	}
	closed, err := ex.Tap("a", n)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	close(src.start)
	fields := map[string][]string{"src": nil, "a": {"a"}, "b": {"a", "b"}, "sink": {"a", "b"}}
	for stage, tap := range taps {
		recs := tapped(t, ex, tap)
		is := increasing(t, "tap "+stage, recs)
		if len(recs) == 0 || is[0] != 0 || tap.Dropped() != 0 {
			t.Fatalf("tap %s: samples %v, %d dropped", stage, is, tap.Dropped())
		}
		if stage == "src" || stage == "a" {
			// The source's batches are its Emit calls, the chain's input.
			if len(is) != n/per || is[len(is)-1] != n-per {
				t.Errorf("tap %s: samples %v, want every %dth record", stage, is, per)
			}
		}
		for _, r := range recs {
			if len(r.Fields) != 1+len(fields[stage]) {
				t.Fatalf("tap %s: %v, want the fields %v too", stage, r.Fields, fields[stage])
			}
			for _, k := range fields[stage] {
				if r.Fields[k] == nil {
					t.Fatalf("tap %s: %v, no %q", stage, r.Fields, k)
				}
			}
		}
	}
	if got := tapped(t, ex, closed); len(got) != 0 {
		t.Errorf("closed tap got %d records", len(got))
	}
	if sink.len() != n {
		t.Errorf("sink wrote %d records, want %d", sink.len(), n)
	}
}

// TestTapNeverHoldsThePipeline: taps nobody reads, with a buffer of 2,
// keep 2 samples and count the others as dropped, and the pipeline runs to
// its end all the same.
func TestTapNeverHoldsThePipeline(t *testing.T) {
	const n = 5000
	src := &heldSource{gen: gen{count: n, per: 100}, start: make(chan struct{})}
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	sink := &collect{}
	ex := run(t, chain(16, src, sink, pass, pass), flowruntime.Options{})
	stages := []string{"src", "a", "b", "sink"}
	var taps []*flowruntime.Tap
	for _, stage := range stages {
		tap, err := ex.Tap(stage, 2)
		if err != nil {
			t.Fatal(err)
		}
		taps = append(taps, tap)
	}
	close(src.start)
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if sink.len() != n {
		t.Fatalf("sink wrote %d records, want %d", sink.len(), n)
	}
	st := ex.Stats()
	for i, stage := range stages {
		tap := taps[i]
		// Edges of 16 make batches of at most 16 records.
		if got := len(tapped(t, ex, tap)); got != 2 || tap.Dropped() < n/16-2 {
			t.Errorf("tap %s: kept %d, dropped %d; want 2, at least %d", stage, got, tap.Dropped(), n/16-2)
		}
		if ns, _ := st.Node(stage); ns.TapDropped != tap.Dropped() {
			t.Errorf("stage %s: TapDropped = %d, the tap dropped %d", stage, ns.TapDropped, tap.Dropped())
		}
	}
}

// TestTapOfABroadcastSeesEachRecordOnce: a broadcast fanout's tap samples
// what it sends on its first output only, not the copies on the others.
func TestTapOfABroadcastSeesEachRecordOnce(t *testing.T) {
	const n = 300
	src := &heldSource{gen: gen{count: n, per: 10}, start: make(chan struct{})}
	a, b := &collect{}, &collect{}
	g := fanGraph(src, flowruntime.Broadcast, nil, []flowruntime.Sink{a, b}, []int{64, 64}, make([]overflow.Mode, 2))
	ex := run(t, g, flowruntime.Options{})
	tap, err := ex.Tap("fan", n)
	if err != nil {
		t.Fatal(err)
	}
	close(src.start)
	if is := increasing(t, "tap of the broadcast", tapped(t, ex, tap)); len(is) == 0 {
		t.Fatal("no sample")
	}
}
