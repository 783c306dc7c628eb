package runtime_test

import (
	"context"
	"sync"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// throttle is a token-bucket Gate: one token per every, burst tokens at
// most, waiting with the clock's Sleep.
type throttle struct {
	clock  flowruntime.Clock
	every  time.Duration
	burst  int
	tokens int
	last   time.Time
}

func newThrottle(clock flowruntime.Clock, every time.Duration, burst int) *throttle {
	return &throttle{clock: clock, every: every, burst: burst, tokens: burst, last: clock.Now()}
}

func (th *throttle) Wait(ctx context.Context) error {
	for {
		now := th.clock.Now()
		if n := int(now.Sub(th.last) / th.every); n > 0 {
			th.tokens = min(th.burst, th.tokens+n)
			th.last = th.last.Add(time.Duration(n) * th.every)
		}
		if th.tokens > 0 {
			th.tokens--
			return nil
		}
		if err := th.clock.Sleep(ctx, th.last.Add(th.every).Sub(now)); err != nil {
			return err
		}
	}
}

// tryThrottle is a throttle that can also pass records without waiting.
type tryThrottle struct{ *throttle }

func (th tryThrottle) TryWait() bool {
	now := th.clock.Now()
	if n := int(now.Sub(th.last) / th.every); n > 0 {
		th.tokens = min(th.burst, th.tokens+n)
		th.last = th.last.Add(time.Duration(n) * th.every)
	}
	if th.tokens > 0 {
		th.tokens--
		return true
	}
	return false
}

func (th *throttle) Process(r flowruntime.Record, emit func(flowruntime.Record)) error {
	emit(r)
	return nil
}

// stamp is a sink recording the virtual time of every record it writes.
type stamp struct {
	clock flowruntime.Clock
	mu    sync.Mutex
	at    []time.Time
}

func (s *stamp) Write(_ context.Context, recs []flowruntime.Record) error {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for range recs {
		s.at = append(s.at, now)
	}
	return nil
}

func (s *stamp) Close() error { return nil }

func (s *stamp) until(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.at {
		if !at.After(t) {
			n++
		}
	}
	return n
}

// TestThrottleVirtualClock: 100/s with burst 10 passes 310 records in the
// first 3 virtual seconds, every time, with or without TryWait.
func TestThrottleVirtualClock(t *testing.T) {
	for i := range 6 {
		vc := flowruntime.NewVirtualClock(t0)
		vc.SetAuto(true)
		sink := &stamp{clock: vc}
		var gate flowruntime.Processor = newThrottle(vc, 10*time.Millisecond, 10)
		if i%2 == 1 {
			gate = tryThrottle{gate.(*throttle)}
		}
		g := chain(1024, &gen{count: -1, per: 50}, sink, gate)
		ex := run(t, g, flowruntime.Options{Clock: vc})
		<-vc.After(3*time.Second + time.Millisecond)
		ex.Kill()
		_ = ex.Wait()
		if n := sink.until(t0.Add(3 * time.Second)); n < 309 || n > 311 {
			t.Fatalf("%d records by 3s, want 310 ± 1", n)
		}
	}
}

// TestSinkRetryBackoff: a sink failing three times is retried after
// growing, jittered waits on the virtual clock.
func TestSinkRetryBackoff(t *testing.T) {
	vc := flowruntime.NewVirtualClock(t0)
	vc.SetAuto(true)
	var mu sync.Mutex
	var calls []time.Time
	sink := &collect{fail: func(call int, _ []flowruntime.Record) error {
		mu.Lock()
		calls = append(calls, vc.Now())
		mu.Unlock()
		if call <= 3 {
			return errBoom
		}
		return nil
	}}
	g := chain(16, &gen{count: 5, per: 5}, sink)
	g.Nodes[1].OnError = onerror.Policy{Mode: onerror.Retry, Attempts: 5, Backoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
	ex := run(t, g, flowruntime.Options{Clock: vc})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4 {
		t.Fatalf("%d writes, want 4", len(calls))
	}
	for i, max := range []time.Duration{100, 200, 300} {
		max *= time.Millisecond
		gap := calls[i+1].Sub(calls[i])
		if gap < max/2 || gap > max {
			t.Errorf("wait before retry %d = %v, want in [%v, %v]", i+1, gap, max/2, max)
		}
	}
	st, _ := ex.Stats().Node("sink")
	if st.Retries != 3 || st.Out != 5 {
		t.Errorf("counters %+v", st)
	}
}

// batcher is a Holder and Timed processor: it emits one record per size
// records, or after timeout since its first held record.
type batcher struct {
	clock   flowruntime.Clock
	size    int
	timeout time.Duration
	held    []int64
	since   time.Time
}

func (b *batcher) Process(r flowruntime.Record, emit func(flowruntime.Record)) error {
	if len(b.held) == 0 {
		b.since = b.clock.Now()
	}
	b.held = append(b.held, field(r))
	if len(b.held) >= b.size {
		b.emit(emit)
	}
	return nil
}

func (b *batcher) emit(emit func(flowruntime.Record)) {
	items := make([]any, len(b.held))
	for i, v := range b.held {
		items[i] = v
	}
	emit(flowruntime.Record{Fields: map[string]any{"items": items, "at": b.clock.Now()}})
	b.held = b.held[:0]
}

func (b *batcher) Held() int { return len(b.held) }

func (b *batcher) Flush(emit func(flowruntime.Record)) error {
	if len(b.held) > 0 {
		b.emit(emit)
	}
	return nil
}

func (b *batcher) Deadline() (time.Time, bool) {
	return b.since.Add(b.timeout), len(b.held) > 0
}

func (b *batcher) Tick(now time.Time, emit func(flowruntime.Record)) error {
	if len(b.held) > 0 && !now.Before(b.since.Add(b.timeout)) {
		b.emit(emit)
	}
	return nil
}

// TestHolderTimed: a batching holder keeps acknowledgements until it has
// emitted the records, its timer fires on virtual time, and end of stream
// flushes it.
func TestHolderTimed(t *testing.T) {
	vc := flowruntime.NewVirtualClock(t0)
	vc.SetAuto(true)
	// 25 records, one per 100ms: two batches of 10 by count, and the last
	// 5 flushed at end of stream, before their timeout.
	src := &gen{count: 25, per: 1, clock: vc, every: 100 * time.Millisecond}
	var mu sync.Mutex
	var ackedAt []time.Time
	src.onDone = func(first, n int) {
		mu.Lock()
		ackedAt = append(ackedAt, vc.Now())
		mu.Unlock()
	}
	sink := &collect{}
	b := &batcher{clock: vc, size: 10, timeout: 1500 * time.Millisecond}
	ex := run(t, chain(16, src, sink, b), flowruntime.Options{Clock: vc})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	got := sink.records()
	var sizes []int
	var ats []time.Duration
	for _, r := range got {
		sizes = append(sizes, len(r.Fields["items"].([]any)))
		ats = append(ats, r.Fields["at"].(time.Time).Sub(t0))
	}
	// Records arrive at 0, 100ms, ... 2.4s. Count batches at 0.9s and 1.9s;
	// the last 5 (2.0s-2.4s) are flushed at end of stream (2.5s, after the
	// source's last pause), before their timeout (3.5s).
	wantSizes := []int{10, 10, 5}
	if len(sizes) != 3 || sizes[0] != 10 || sizes[1] != 10 || sizes[2] != 5 {
		t.Fatalf("batch sizes %v, want %v", sizes, wantSizes)
	}
	if ats[0] != 900*time.Millisecond || ats[1] != 1900*time.Millisecond || ats[2] != 2500*time.Millisecond {
		t.Errorf("batches emitted at %v", ats)
	}
	if len(ackedAt) != 25 {
		t.Fatalf("%d acknowledgements, want 25", len(ackedAt))
	}
	for i, at := range ackedAt {
		want := t0.Add(900 * time.Millisecond)
		switch {
		case i >= 20:
			want = t0.Add(2500 * time.Millisecond)
		case i >= 10:
			want = t0.Add(1900 * time.Millisecond)
		}
		if !at.Equal(want) {
			t.Errorf("record %d acknowledged at %v, want %v", i, at.Sub(t0), want.Sub(t0))
		}
	}
}

// TestTimedTimeout: the Timed deadline fires on virtual time while the
// input is idle.
func TestTimedTimeout(t *testing.T) {
	vc := flowruntime.NewVirtualClock(t0)
	vc.SetAuto(true)
	src := sourceFunc(func(ctx context.Context, out flowruntime.Emitter) error {
		for i := range 3 {
			rec := flowruntime.Record{Fields: map[string]any{"i": int64(i)}}
			if err := out.Emit(ctx, []flowruntime.Record{rec}, nil); err != nil {
				return nil
			}
		}
		// Idle for 10 virtual seconds before the end of stream.
		return vc.Sleep(ctx, 10*time.Second)
	})
	sink := &stamp{clock: vc}
	b := &batcher{clock: vc, size: 10, timeout: time.Second}
	ex := run(t, chain(16, src, sink, b), flowruntime.Options{Clock: vc})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(sink.at) != 1 || !sink.at[0].Equal(t0.Add(time.Second)) {
		t.Fatalf("batch written at %v, want once at 1s", sink.at)
	}
	if end := vc.Now().Sub(t0); end != 10*time.Second {
		t.Errorf("clock at %v after the run, want 10s", end)
	}
}

// TestVirtualClockManual: in manual mode time moves only with Advance,
// firing timers in order.
func TestVirtualClockManual(t *testing.T) {
	vc := flowruntime.NewVirtualClock(t0)
	a := vc.After(2 * time.Second)
	b := vc.After(time.Second)
	select {
	case <-a:
		t.Fatal("fired before Advance")
	case <-b:
		t.Fatal("fired before Advance")
	default:
	}
	vc.Advance(1500 * time.Millisecond)
	if got := <-b; !got.Equal(t0.Add(time.Second)) {
		t.Errorf("b fired at %v", got)
	}
	select {
	case <-a:
		t.Fatal("a fired early")
	default:
	}
	done := make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- vc.Sleep(ctx, time.Hour) }()
	vc.Advance(time.Second)
	if got := <-a; !got.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("a fired at %v", got)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Sleep = %v, want context.Canceled", err)
	}
	if vc.Pending() != 0 {
		t.Errorf("%d timers pending", vc.Pending())
	}
	if now := vc.Now(); !now.Equal(t0.Add(2500 * time.Millisecond)) {
		t.Errorf("now = %v", now)
	}
}
