package runtime_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gen is a source emitting records {"i": i} with position i, per emits
// records per Emit call, count in all (forever when count < 0), optionally
// pausing between calls on clock.
type gen struct {
	count, per int
	clock      flowruntime.Clock
	every      time.Duration
	emitted    atomic.Int64 // records whose Emit returned nil
	acked      atomic.Int64 // records whose done ran
	doneCalls  atomic.Int64
	onDone     func(first, n int)
}

func (g *gen) Run(ctx context.Context, out flowruntime.Emitter) error {
	per := max(g.per, 1)
	for i := 0; g.count < 0 || i < g.count; i += per {
		if ctx.Err() != nil {
			return nil
		}
		n := per
		if g.count >= 0 {
			n = min(per, g.count-i)
		}
		recs := make([]flowruntime.Record, n)
		for j := range recs {
			recs[j] = flowruntime.Record{
				Fields: map[string]any{"i": int64(i + j)},
				Meta:   flowruntime.Meta{Source: "gen", Position: int64(i + j)},
			}
		}
		first := i
		if err := out.Emit(ctx, recs, func() {
			g.acked.Add(int64(n))
			g.doneCalls.Add(1)
			if g.onDone != nil {
				g.onDone(first, n)
			}
		}); err != nil {
			return nil
		}
		g.emitted.Add(int64(n))
		if g.every > 0 {
			if err := g.clock.Sleep(ctx, g.every); err != nil {
				return nil
			}
		}
	}
	return nil
}

// proc is a processor made of a function.
type proc func(r flowruntime.Record, emit func(flowruntime.Record)) error

func (p proc) Process(r flowruntime.Record, emit func(flowruntime.Record)) error { return p(r, emit) }

// collect is a sink keeping what it writes; delay slows every Write and
// fail, when set, decides whether a Write fails.
type collect struct {
	mu     sync.Mutex
	recs   []flowruntime.Record
	writes int
	delay  time.Duration
	clock  flowruntime.Clock
	fail   func(call int, recs []flowruntime.Record) error
	onW    func(recs []flowruntime.Record)
	closed atomic.Bool
	calls  int
}

func (c *collect) Write(ctx context.Context, recs []flowruntime.Record) error {
	c.mu.Lock()
	c.calls++
	call := c.calls
	c.mu.Unlock()
	if c.fail != nil {
		if err := c.fail(call, recs); err != nil {
			return err
		}
	}
	if c.delay > 0 {
		clock := c.clock
		if clock == nil {
			clock = flowruntime.RealClock{}
		}
		if err := clock.Sleep(ctx, c.delay); err != nil {
			return err
		}
	}
	if c.onW != nil {
		c.onW(recs)
	}
	c.mu.Lock()
	c.recs = append(c.recs, recs...)
	c.writes++
	c.mu.Unlock()
	return nil
}

func (c *collect) Close() error {
	c.closed.Store(true)
	return nil
}

func (c *collect) records() []flowruntime.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]flowruntime.Record(nil), c.recs...)
}

func (c *collect) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

// blockSink blocks every Write until its context ends.
type blockSink struct{ closed atomic.Bool }

func (b *blockSink) Write(ctx context.Context, recs []flowruntime.Record) error {
	<-ctx.Done()
	return ctx.Err()
}
func (b *blockSink) Close() error { b.closed.Store(true); return nil }

// chain builds a linear graph: a source, processors, a sink.
func chain(capacity int, src flowruntime.Source, sink flowruntime.Sink, procs ...flowruntime.Processor) *flowruntime.Graph {
	g := &flowruntime.Graph{Pipeline: "p"}
	g.Nodes = append(g.Nodes, &flowruntime.Node{Name: "src", Source: src})
	prev := "src"
	for i, p := range procs {
		name := string(rune('a' + i))
		g.Nodes = append(g.Nodes, &flowruntime.Node{Name: name, Processor: p})
		g.Edges = append(g.Edges, &flowruntime.Edge{From: prev, To: name, Capacity: capacity})
		prev = name
	}
	g.Nodes = append(g.Nodes, &flowruntime.Node{Name: "sink", Sink: sink})
	g.Edges = append(g.Edges, &flowruntime.Edge{From: prev, To: "sink", Capacity: capacity})
	return g
}

func run(t *testing.T, g *flowruntime.Graph, opts flowruntime.Options) *flowruntime.Execution {
	t.Helper()
	ex, err := flowruntime.Start(context.Background(), g, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ex.Kill()
		_ = ex.Wait()
	})
	return ex
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func field(r flowruntime.Record) int64 { return r.Fields["i"].(int64) }

var errBoom = errors.New("boom")
