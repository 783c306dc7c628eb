package runtime_test

import (
	"context"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/overflow"
)

// napper is a Caller that sleeps d per call.
type napper struct {
	d    time.Duration
	conc int
}

func (c napper) Call(ctx context.Context, r flowruntime.Record) (flowruntime.Record, error) {
	time.Sleep(c.d)
	return r, nil
}
func (c napper) Concurrency() int { return c.conc }
func (c napper) Ordered() bool    { return true }

// TestBusyTimeOfASlowSink: a sink whose every write takes 20 ms is busy at
// least that long per write, each write lands in the write-time histogram,
// and a fast processor in front of it is busy far less; a source reports
// no busy time.
func TestBusyTimeOfASlowSink(t *testing.T) {
	sink := &collect{delay: 20 * time.Millisecond}
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	ex := run(t, chain(10, &gen{count: 100, per: 10}, sink, pass), flowruntime.Options{})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	st := ex.Stats()
	sk, _ := st.Node("sink")
	writes := uint64(sink.writes)
	if sk.Writes.Count != writes || writes < 10 {
		t.Fatalf("histogram counts %d writes, the sink saw %d (want ≥ 10)", sk.Writes.Count, writes)
	}
	if least := time.Duration(writes) * 20 * time.Millisecond; sk.Busy < least || sk.Writes.Sum < least {
		t.Errorf("sink busy %v, writes took %v; want ≥ %v", sk.Busy, sk.Writes.Sum, least)
	}
	cum := sk.Writes.Cumulative()
	if len(cum) != len(flowruntime.WriteBuckets) || cum[len(cum)-1] != writes {
		t.Errorf("cumulative buckets %v, want %d buckets ending at %d", cum, len(flowruntime.WriteBuckets), writes)
	}
	for i, b := range flowruntime.WriteBuckets {
		if b < 20*time.Millisecond && cum[i] != 0 {
			t.Errorf("bucket ≤ %v counts %d writes, all took ≥ 20ms", b, cum[i])
		}
	}
	// The processor waits for credit on its full output most of the time:
	// that does not count.
	if a, _ := st.Node("a"); a.Busy > sk.Busy/2 {
		t.Errorf("processor busy %v, sink %v: waiting for credit counted as work", a.Busy, sk.Busy)
	}
	if src, _ := st.Node("src"); src.Busy != 0 || flowruntime.BusyMeasured(flowruntime.KindSource) {
		t.Errorf("source busy %v, want none", src.Busy)
	}
}

// TestBusyTimeOfAGate: a throttle's pacing counts as its work, while the
// batch it paces is still under way.
func TestBusyTimeOfAGate(t *testing.T) {
	clock := flowruntime.RealClock{}
	th := newThrottle(clock, 10*time.Millisecond, 1)
	ex := run(t, chain(64, &gen{count: -1, per: 64}, &collect{}, th), flowruntime.Options{})
	time.Sleep(300 * time.Millisecond)
	a, _ := ex.Stats().Node("a")
	if a.Busy < 150*time.Millisecond {
		t.Errorf("throttle busy %v after 300ms of pacing, want most of it", a.Busy)
	}
}

// TestBusyTimeOfACaller: a caller's busy time is its calls' time over its
// concurrency.
func TestBusyTimeOfACaller(t *testing.T) {
	const n, d, conc = 40, 10 * time.Millisecond, 4
	ex := run(t, callerGraph(&gen{count: n, per: 8}, napper{d: d, conc: conc}, &collect{}), flowruntime.Options{})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	c, _ := ex.Stats().Node("call")
	if want := n * d / conc; c.Busy < want || c.Busy > 4*want {
		t.Errorf("caller busy %v, want about %v", c.Busy, want)
	}
}

// TestEdgeStatsNameTheirMode: edge stats carry the overflow mode and mark
// the dead-letter edge.
func TestEdgeStatsNameTheirMode(t *testing.T) {
	g := fanGraph(&gen{count: 10, per: 10}, flowruntime.Broadcast, nil, []flowruntime.Sink{&collect{}, &collect{}},
		[]int{8, 8}, []overflow.Mode{overflow.Block, overflow.DropNewest})
	ex := run(t, g, flowruntime.Options{})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	modes := map[string]overflow.Mode{}
	for _, e := range ex.Stats().Edges {
		modes[e.To] = e.WhenFull
		if e.DeadLetter {
			t.Errorf("edge %s -> %s marked dead-letter", e.From, e.To)
		}
	}
	if modes["sink0"] != overflow.Block || modes["sink1"] != overflow.DropNewest {
		t.Errorf("modes %v", modes)
	}
}
