package runtime_test

import (
	"context"
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/overflow"
)

// heldSource is a gen that starts emitting once go is closed, so that a
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

// TestTapSeesWhatLeavesEachStage taps every stage of src -> a -> b -> sink
// (a and b fused onto one goroutine): each tap with room for every record
// gets all of them, in order, as they left its stage, and a tap on a stage
// that does not exist is an error.
func TestTapSeesWhatLeavesEachStage(t *testing.T) {
	const n = 1000
	src := &heldSource{gen: gen{count: n, per: 100}, start: make(chan struct{})}
	add := func(k string, v int64) proc {
		return func(r flowruntime.Record, emit func(flowruntime.Record)) error {
			r.Fields[k] = v
			emit(r)
			return nil
		}
	}
	sink := &collect{}
	ex := run(t, chain(64, src, sink, add("a", 1), add("b", 2)), flowruntime.Options{})
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
	// A tap closed at once sees nothing.
	closed, err := ex.Tap("a", n)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	close(src.start)
	want := map[string][]string{"src": nil, "a": {"a"}, "b": {"a", "b"}, "sink": {"a", "b"}}
	for stage, tap := range taps {
		recs := tapped(t, ex, tap)
		if len(recs) != n || tap.Dropped() != 0 {
			t.Fatalf("tap %s: %d records, %d dropped; want %d, 0", stage, len(recs), tap.Dropped(), n)
		}
		for i, r := range recs {
			if field(r) != int64(i) || len(r.Fields) != 1+len(want[stage]) {
				t.Fatalf("tap %s: record %d = %v", stage, i, r.Fields)
			}
			for _, k := range want[stage] {
				if r.Fields[k] == nil {
					t.Fatalf("tap %s: record %d = %v, no %q", stage, i, r.Fields, k)
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

// TestTapNeverHoldsThePipeline: a tap nobody reads, with a buffer of 4,
// keeps 4 records and counts every other one as dropped, and the pipeline
// runs to its end all the same.
func TestTapNeverHoldsThePipeline(t *testing.T) {
	const n = 5000
	src := &heldSource{gen: gen{count: n, per: 256}, start: make(chan struct{})}
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	sink := &collect{}
	ex := run(t, chain(16, src, sink, pass, pass), flowruntime.Options{})
	var taps []*flowruntime.Tap
	for _, stage := range []string{"src", "a", "b", "sink"} {
		tap, err := ex.Tap(stage, 4)
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
	for i, stage := range []string{"src", "a", "b", "sink"} {
		tap := taps[i]
		if got := len(tapped(t, ex, tap)); got != 4 || tap.Dropped() != n-4 {
			t.Errorf("tap %s: kept %d, dropped %d; want 4, %d", stage, got, tap.Dropped(), n-4)
		}
		if ns, _ := st.Node(stage); ns.TapDropped != n-4 {
			t.Errorf("stage %s: TapDropped = %d, want %d", stage, ns.TapDropped, n-4)
		}
	}
}

// TestTapOfABroadcastSeesEachRecordOnce: a broadcast fanout's tap sees
// every record once, however many branches it copies it to.
func TestTapOfABroadcastSeesEachRecordOnce(t *testing.T) {
	const n = 300
	src := &heldSource{gen: gen{count: n, per: 50}, start: make(chan struct{})}
	a, b := &collect{}, &collect{}
	g := fanGraph(src, flowruntime.Broadcast, nil, []flowruntime.Sink{a, b}, []int{64, 64}, make([]overflow.Mode, 2))
	ex := run(t, g, flowruntime.Options{})
	tap, err := ex.Tap("fan", 2*n)
	if err != nil {
		t.Fatal(err)
	}
	close(src.start)
	recs := tapped(t, ex, tap)
	if len(recs) != n {
		t.Fatalf("tap of the broadcast: %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if field(r) != int64(i) {
			t.Fatalf("record %d = %v", i, r.Fields)
		}
	}
}
