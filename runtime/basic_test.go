package runtime_test

import (
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

func TestEndOfStream(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		per      int
		batch    int
		noFusion bool
	}{
		{"defaults", 1024, 100, 0, false},
		{"unfused", 1024, 100, 0, true},
		{"tiny edges", 3, 7, 2, false},
		{"one by one", 1, 1, 1, true},
		{"big emits", 64, 1000, 16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &gen{count: 5000, per: tc.per}
			sink := &collect{}
			even := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
				if field(r)%2 == 0 {
					emit(r)
				}
				return nil
			})
			double := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
				r.Fields["j"] = field(r) * 2
				emit(r)
				return nil
			})
			ex := run(t, chain(tc.capacity, src, sink, even, double), flowruntime.Options{BatchSize: tc.batch, NoFusion: tc.noFusion})
			if err := ex.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			got := sink.records()
			if len(got) != 2500 {
				t.Fatalf("sink got %d records, want 2500", len(got))
			}
			for k, r := range got {
				if field(r) != int64(2*k) || r.Fields["j"] != int64(4*k) {
					t.Fatalf("record %d = %v, want i=%d j=%d", k, r.Fields, 2*k, 4*k)
				}
			}
			if !sink.closed.Load() {
				t.Error("sink not closed")
			}
			if got := src.acked.Load(); got != 5000 {
				t.Errorf("acknowledged %d records, want 5000", got)
			}
			st := ex.Stats()
			if st.InFlight != 0 || st.Acks != 0 {
				t.Errorf("after the end: in flight %d, acks %d; want 0, 0", st.InFlight, st.Acks)
			}
			if peak, bound := st.PeakInFlight, st.Capacity(); peak > bound || peak == 0 {
				t.Errorf("peak in flight %d, want in (0, %d]", peak, bound)
			}
			a, _ := st.Node("a")
			b, _ := st.Node("b")
			s, _ := st.Node("sink")
			if a.In != 5000 || a.Out != 2500 || b.In != 2500 || b.Out != 2500 || s.In != 2500 || s.Out != 2500 {
				t.Errorf("counters a=%+v b=%+v sink=%+v", a, b, s)
			}
		})
	}
}
