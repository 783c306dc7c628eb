package runtime_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// unitSource emits units of size records each (field i counts up), with a
// done callback that counts finished units, until ctx ends.
type unitSource struct {
	size     int
	emitted  atomic.Int64 // units Emit accepted
	finished atomic.Int64 // units whose done ran
}

func (s *unitSource) Run(ctx context.Context, out flowruntime.Emitter) error {
	for i := int64(0); ctx.Err() == nil; {
		recs := make([]flowruntime.Record, s.size)
		for k := range recs {
			recs[k] = flowruntime.Record{Fields: map[string]any{"i": i}}
			i++
		}
		if err := out.Emit(ctx, recs, func() { s.finished.Add(1) }); err != nil {
			return nil
		}
		s.emitted.Add(1)
	}
	return nil
}

// TestStopSendsAStartedUnitWhole stops an execution while its source is in
// the middle of sending a unit far larger than its edge: the graceful stop
// lets the unit finish, so every unit is either wholly written and
// acknowledged or not sent at all, and the sink holds whole units only.
func TestStopSendsAStartedUnitWhole(t *testing.T) {
	const size = 1000
	src := &unitSource{size: size}
	sink := &collect{delay: 50 * time.Microsecond}
	ex := run(t, chain(4, src, sink), flowruntime.Options{BatchSize: 2})
	waitFor(t, "the first unit to be under way", func() bool { return sink.len() > size/2 })
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait after Stop = %v", err)
	}
	recs := sink.records()
	if len(recs)%size != 0 || len(recs) == 0 {
		t.Fatalf("the sink holds %d records: not whole units of %d", len(recs), size)
	}
	for k, r := range recs {
		if field(r) != int64(k) {
			t.Fatalf("record %d has i = %d", k, field(r))
		}
	}
	if got, want := src.finished.Load(), int64(len(recs)/size); got != want || src.emitted.Load() != want {
		t.Errorf("%d units finished and %d emitted, want %d (the units written)", got, src.emitted.Load(), want)
	}
}
