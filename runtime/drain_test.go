package runtime_test

import (
	"errors"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestStopWithinKillsADrainThatDoesNotFinish stops an execution whose sink
// takes far longer to write what is queued than the drain may last: the
// execution is killed when the timeout passes, Wait says so and counts the
// records abandoned, and the source is acknowledged only for what was
// written.
func TestStopWithinKillsADrainThatDoesNotFinish(t *testing.T) {
	src := &gen{count: -1, per: 1}
	sink := &collect{delay: time.Hour}
	ex := run(t, chain(64, src, sink), flowruntime.Options{BatchSize: 1})
	waitFor(t, "the edge to fill", func() bool { return ex.Stats().InFlight >= 64 })

	ex.StopWithin(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- ex.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the execution still runs 10 s after StopWithin(50ms)")
	}
	var dt *flowruntime.DrainTimeoutError
	if !errors.As(err, &dt) {
		t.Fatalf("Wait = %v, want a *DrainTimeoutError", err)
	}
	if !errors.Is(err, flowruntime.ErrKilled) {
		t.Errorf("Wait = %v, which is not ErrKilled", err)
	}
	if dt.Pipeline != "p" || dt.Timeout != 50*time.Millisecond {
		t.Errorf("error = %+v, want pipeline p and timeout 50ms", dt)
	}
	inFlight := ex.Stats().InFlight
	t.Logf("%v; emitted %d, acknowledged %d, written %d, in flight after the end %d", err, src.emitted.Load(), src.acked.Load(), sink.len(), inFlight)
	if dt.Abandoned() == 0 || dt.Abandoned() != inFlight {
		t.Errorf("Abandoned() = %d, want the %d records left in flight (more than 0)", dt.Abandoned(), inFlight)
	}
	if got, written := src.acked.Load(), int64(sink.len()); got > written {
		t.Errorf("%d records acknowledged, but only %d written", got, written)
	}
	if src.acked.Load()+dt.Abandoned() > src.emitted.Load() {
		t.Errorf("acknowledged %d + abandoned %d > emitted %d", src.acked.Load(), dt.Abandoned(), src.emitted.Load())
	}
}

// TestStopWithinLetsADrainThatFinishesEnd: a drain that ends within the
// timeout is a graceful stop like any other.
func TestStopWithinLetsADrainThatFinishesEnd(t *testing.T) {
	for _, timeout := range []time.Duration{time.Minute, 0} {
		src := &gen{count: -1, per: 1}
		sink := &collect{delay: 200 * time.Microsecond}
		ex := run(t, chain(32, src, sink), flowruntime.Options{BatchSize: 1})
		waitFor(t, "records in flight", func() bool { return ex.Stats().InFlight > 0 && sink.len() > 0 })
		ex.StopWithin(timeout)
		if err := ex.Wait(); err != nil {
			t.Fatalf("StopWithin(%s): Wait = %v", timeout, err)
		}
		if e, a, w := src.emitted.Load(), src.acked.Load(), int64(sink.len()); e != a || a != w {
			t.Errorf("StopWithin(%s): emitted %d, acknowledged %d, written %d: want all equal", timeout, e, a, w)
		}
		if n := ex.Stats().InFlight; n != 0 {
			t.Errorf("StopWithin(%s): %d records in flight after the end", timeout, n)
		}
	}
}

// TestStopWithinAfterKill keeps the reason Kill gave.
func TestStopWithinAfterKill(t *testing.T) {
	src := &gen{count: -1, per: 1}
	sink := &blockSink{}
	ex := run(t, chain(8, src, sink), flowruntime.Options{BatchSize: 1})
	waitFor(t, "the edge to fill", func() bool { return ex.Stats().InFlight >= 8 })
	ex.Kill()
	ex.StopWithin(time.Millisecond)
	if err := ex.Wait(); !errors.Is(err, flowruntime.ErrKilled) {
		t.Fatalf("Wait = %v, want ErrKilled", err)
	}
	var dt *flowruntime.DrainTimeoutError
	if err := ex.Wait(); errors.As(err, &dt) {
		t.Errorf("Wait = %v, want the Kill's ErrKilled, not a drain timeout", err)
	}
}
