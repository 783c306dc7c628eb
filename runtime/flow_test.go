package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"go.uber.org/goleak"
)

// TestCredits runs linear pipelines with random capacities, batch sizes,
// emit sizes and slow stages, many at once under -race, and checks that
// every record arrives once, in order, with in-flight records within the
// sum of the edge capacities.
func TestCredits(t *testing.T) {
	for seed := range 12 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			capacity := 1 + rng.IntN(40)
			batch := 1 + rng.IntN(300)
			per := 1 + rng.IntN(100)
			stages := rng.IntN(4)
			src := &gen{count: 3000 + rng.IntN(2000), per: per}
			var procs []flowruntime.Processor
			for range stages {
				stall := rng.IntN(3) == 0
				procs = append(procs, proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
					if stall && field(r)%500 == 0 {
						time.Sleep(time.Millisecond)
					}
					emit(r)
					return nil
				}))
			}
			sink := &collect{}
			if rng.IntN(2) == 0 {
				sink.delay = 50 * time.Microsecond
			}
			ex := run(t, chain(capacity, src, sink, procs...), flowruntime.Options{BatchSize: batch, NoFusion: rng.IntN(2) == 0})
			if err := ex.Wait(); err != nil {
				t.Fatal(err)
			}
			got := sink.records()
			if len(got) != src.count {
				t.Fatalf("got %d records, want %d", len(got), src.count)
			}
			for k, r := range got {
				if field(r) != int64(k) {
					t.Fatalf("record %d has i=%d", k, field(r))
				}
			}
			st := ex.Stats()
			if st.PeakInFlight > st.Capacity() {
				t.Errorf("peak in flight %d > capacity %d (capacity %d per edge, batch %d)", st.PeakInFlight, st.Capacity(), capacity, batch)
			}
			if src.acked.Load() != int64(src.count) || st.Acks != 0 {
				t.Errorf("acked %d of %d, %d units open", src.acked.Load(), src.count, st.Acks)
			}
		})
	}
}

// TestSlowSinkBoundsMemory: with a slow sink, the records in flight never
// exceed the sum of the edge capacities and the source never runs ahead of
// the sink by more than that.
func TestSlowSinkBoundsMemory(t *testing.T) {
	src := &gen{count: -1, per: 16}
	var written atomic.Int64
	var ahead atomic.Int64
	sink := &collect{delay: 200 * time.Microsecond}
	sink.onW = func(recs []flowruntime.Record) {
		written.Add(int64(len(recs)))
	}
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	hold := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	g := chain(50, src, sink, pass, hold)
	ex := run(t, g, flowruntime.Options{BatchSize: 8, NoFusion: true})
	bound := ex.Stats().Capacity()
	sinkEdgeFull := false
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		// Read the sink first: the source can only have moved further.
		w := written.Load()
		e := src.emitted.Load()
		if d := e - w; d > ahead.Load() {
			ahead.Store(d)
		}
		st := ex.Stats()
		if st.InFlight > bound {
			t.Fatalf("in flight %d > bound %d", st.InFlight, bound)
		}
		for _, e := range st.Edges {
			if e.Fill > int64(e.Capacity) {
				t.Fatalf("edge %s -> %s holds %d records, capacity %d", e.From, e.To, e.Fill, e.Capacity)
			}
			if e.To == "sink" && e.Fill == int64(e.Capacity) {
				sinkEdgeFull = true
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	st := ex.Stats()
	if st.PeakInFlight > bound {
		t.Errorf("peak in flight %d > bound %d", st.PeakInFlight, bound)
	}
	if st.PeakInFlight < bound/2 {
		t.Errorf("peak in flight %d: the edges never filled (bound %d)", st.PeakInFlight, bound)
	}
	if a := ahead.Load(); a > bound || a == 0 {
		t.Errorf("the source ran %d records ahead of the sink, want in (0, %d]", a, bound)
	}
	if written.Load() == 0 {
		t.Error("nothing written")
	}
	if !sinkEdgeFull {
		t.Error("the edge into the slow sink was never seen full")
	}
}

// TestGracefulStopDrains: Stop ends the source at a checkpoint and every
// record it emitted is written and acknowledged.
func TestGracefulStopDrains(t *testing.T) {
	src := &gen{count: -1, per: 10}
	sink := &collect{delay: 100 * time.Microsecond}
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	ex := run(t, chain(100, src, sink, pass), flowruntime.Options{BatchSize: 32})
	waitFor(t, "records to flow", func() bool { return sink.len() > 500 })
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait after Stop: %v", err)
	}
	// The Emit cut short by Stop may have sent part of its records: they
	// are written but not acknowledged.
	emitted := src.emitted.Load()
	got := sink.records()
	if n := int64(len(got)); n < emitted || n >= emitted+int64(src.per) {
		t.Fatalf("emitted %d, wrote %d", emitted, n)
	}
	for k, r := range got {
		if field(r) != int64(k) {
			t.Fatalf("record %d has i=%d", k, field(r))
		}
	}
	if src.acked.Load() != emitted {
		t.Errorf("acked %d of %d", src.acked.Load(), emitted)
	}
	if !sink.closed.Load() {
		t.Error("sink not closed")
	}
	goleak.VerifyNone(t)
}

// TestStopOnContext: ending Start's context stops gracefully.
func TestStopOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &gen{count: -1, per: 10}
	sink := &collect{}
	ex, err := flowruntime.Start(ctx, chain(64, src, sink), flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "records to flow", func() bool { return sink.len() > 100 })
	cancel()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if n := int64(sink.len()); n < src.emitted.Load() || n >= src.emitted.Load()+int64(src.per) {
		t.Errorf("emitted %d, wrote %d", src.emitted.Load(), n)
	}
	if src.acked.Load() != src.emitted.Load() {
		t.Errorf("acked %d of %d", src.acked.Load(), src.emitted.Load())
	}
}

// TestKill: Kill returns at once even with a sink that never finishes; the
// sink is closed and nothing in flight is acknowledged.
func TestKill(t *testing.T) {
	src := &gen{count: -1, per: 10}
	sink := &blockSink{}
	ex := run(t, chain(64, src, sink), flowruntime.Options{})
	waitFor(t, "the edge to fill", func() bool { return ex.Stats().InFlight > 0 && src.emitted.Load() >= 50 })
	start := time.Now()
	ex.Kill()
	err := ex.Wait()
	if !errors.Is(err, flowruntime.ErrKilled) {
		t.Fatalf("Wait after Kill = %v, want ErrKilled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Kill took %v", d)
	}
	if !sink.closed.Load() {
		t.Error("sink not closed")
	}
	if n := src.acked.Load(); n != 0 {
		t.Errorf("%d records acknowledged though none was written", n)
	}
	goleak.VerifyNone(t)
}

// TestStopWithStuckSinkThenKill: a graceful stop waits for the sink; a kill
// after it ends the execution.
func TestStopWithStuckSinkThenKill(t *testing.T) {
	src := &gen{count: -1, per: 10}
	sink := &blockSink{}
	ex := run(t, chain(64, src, sink), flowruntime.Options{})
	waitFor(t, "the edge to fill", func() bool { return src.emitted.Load() >= 50 })
	ex.Stop()
	select {
	case <-ex.Done():
		t.Fatal("graceful stop finished while the sink still held records")
	case <-time.After(50 * time.Millisecond):
	}
	ex.Kill()
	if err := ex.Wait(); !errors.Is(err, flowruntime.ErrKilled) {
		t.Fatalf("Wait = %v, want ErrKilled", err)
	}
}

// TestConcurrentEmit: a source emitting from several goroutines at once.
func TestConcurrentEmit(t *testing.T) {
	src := sourceFunc(func(ctx context.Context, out flowruntime.Emitter) error {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 500 {
					rec := flowruntime.Record{Fields: map[string]any{"i": int64(w*1000 + i)}}
					if err := out.Emit(ctx, []flowruntime.Record{rec}, nil); err != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		return nil
	})
	sink := &collect{}
	ex := run(t, chain(8, src, sink), flowruntime.Options{})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := sink.len(); n != 2000 {
		t.Fatalf("got %d records, want 2000", n)
	}
}

type sourceFunc func(ctx context.Context, out flowruntime.Emitter) error

func (f sourceFunc) Run(ctx context.Context, out flowruntime.Emitter) error { return f(ctx, out) }

// TestSourceError fails the execution with the source's name.
func TestSourceError(t *testing.T) {
	src := sourceFunc(func(ctx context.Context, out flowruntime.Emitter) error { return errBoom })
	ex := run(t, chain(8, src, &collect{}), flowruntime.Options{})
	err := ex.Wait()
	var se *flowruntime.StageError
	if !errors.As(err, &se) || se.Stage != "src" || !errors.Is(err, errBoom) {
		t.Fatalf("Wait = %v, want a StageError of src wrapping boom", err)
	}
}

// TestPanicFails turns an operator's panic into the execution's error.
func TestPanicFails(t *testing.T) {
	bad := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { panic("bad operator") })
	ex := run(t, chain(8, &gen{count: 10, per: 1}, &collect{}, bad), flowruntime.Options{})
	err := ex.Wait()
	var se *flowruntime.StageError
	if !errors.As(err, &se) || se.Stage != "a" {
		t.Fatalf("Wait = %v, want a StageError of stage a", err)
	}
}

// TestSinkCoalesces: small batches queued for a slow sink are written
// together, up to the batch size, in order.
func TestSinkCoalesces(t *testing.T) {
	src := &gen{count: 300, per: 1}
	sink := &collect{delay: time.Millisecond}
	ex := run(t, chain(400, src, sink), flowruntime.Options{BatchSize: 64})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	got := sink.records()
	if len(got) != 300 {
		t.Fatalf("got %d records", len(got))
	}
	for k, r := range got {
		if field(r) != int64(k) {
			t.Fatalf("record %d has i=%d", k, field(r))
		}
	}
	if sink.writes > 60 || sink.writes < 300/64 {
		t.Errorf("%d writes for 300 records emitted one by one, want between 5 and 60", sink.writes)
	}
	if src.acked.Load() != 300 {
		t.Errorf("acked %d of 300", src.acked.Load())
	}
}
