package runtime_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// budget is shared by the feeds of one test: over is closed once they have
// emitted more than limit records in all.
type budget struct {
	limit int64
	total atomic.Int64
	over  chan struct{}
	once  sync.Once
}

func newBudget(limit int64) *budget { return &budget{limit: limit, over: make(chan struct{})} }

func (b *budget) add(n int) {
	if b.total.Add(int64(n)) > b.limit {
		b.once.Do(func() { close(b.over) })
	}
}

// feed is a source emitting {"i": i} in units of per records, count in all
// (for ever when count < 0), charging what it emits to a budget. ended is
// closed when Run returns.
type feed struct {
	count, per int
	b          *budget
	emitted    atomic.Int64
	acked      atomic.Int64
	ended      chan struct{}
}

func newFeed(count, per int, b *budget) *feed {
	return &feed{count: count, per: per, b: b, ended: make(chan struct{})}
}

func (f *feed) Run(ctx context.Context, out flowruntime.Emitter) error {
	defer close(f.ended)
	for i := 0; f.count < 0 || i < f.count; i += f.per {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n := f.per
		if f.count >= 0 {
			n = min(n, f.count-i)
		}
		recs := make([]flowruntime.Record, n)
		for j := range recs {
			recs[j] = flowruntime.Record{Fields: map[string]any{"i": int64(i + j)}}
		}
		if err := out.Emit(ctx, recs, func() { f.acked.Add(int64(n)) }); err != nil {
			return err
		}
		f.emitted.Add(int64(n))
		f.b.add(n)
	}
	return nil
}

// heldSink does not close until every feed has returned or the feeds went
// over their budget (or the test ends), so that the execution does not stop
// its sources for the reason that every sink has finished: only the take
// can stop them.
type heldSink struct {
	collect
	feeds []*feed
	b     *budget
	quit  chan struct{}
}

func (s *heldSink) Close() error {
	for _, f := range s.feeds {
		select {
		case <-f.ended:
		case <-s.b.over:
		case <-s.quit:
		}
	}
	return s.collect.Close()
}

// callThrough is a Caller returning the record as it is.
type callThrough struct{}

func (callThrough) Call(_ context.Context, r flowruntime.Record) (flowruntime.Record, error) {
	return r, nil
}
func (callThrough) Concurrency() int { return 4 }
func (callThrough) Ordered() bool    { return true }

func passThrough() flowruntime.Processor {
	return proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
		emit(r)
		return nil
	})
}

// TestFinishedTakeStopsWhatFeedsIt builds graphs whose sources could run
// for ever and whose only reader is a take followed by a sink that holds
// its writes until the sources have stopped: the sources must stop after at
// most the take's count plus what the plan can hold in flight (the sum of
// the edge capacities and a batch), and everything they emitted must be
// acknowledged. In the graphs where another reader still wants every
// record, the source must not stop.
func TestFinishedTakeStopsWhatFeedsIt(t *testing.T) {
	const (
		capacity = 32
		batch    = 16
		per      = 8
		count    = 100
	)
	n := func(name string) *flowruntime.Node { return &flowruntime.Node{Name: name} }
	e := func(from, to string) *flowruntime.Edge {
		return &flowruntime.Edge{From: from, To: to, Capacity: capacity}
	}
	type graph struct {
		nodes []*flowruntime.Node
		edges []*flowruntime.Edge
		// takes are the nodes given a take of count; feeds and sinks are
		// filled in by name.
		takes []string
		feeds []string
		held  []string // sinks holding their writes
		all   []string // sinks that must get every record
	}
	tests := []struct {
		name string
		g    graph
		// total is each feed's record count, -1 for an endless feed;
		// stops says whether the feeds must stop early.
		total int
		stops bool
	}{
		{
			name: "chain",
			g: graph{
				nodes: []*flowruntime.Node{n("src"), n("map"), n("take"), n("after"), n("out")},
				edges: []*flowruntime.Edge{e("src", "map"), e("map", "take"), e("take", "after"), e("after", "out")},
				takes: []string{"take"}, feeds: []string{"src"}, held: []string{"out"},
			},
			total: -1, stops: true,
		},
		{
			name: "chain through a caller",
			g: graph{
				nodes: []*flowruntime.Node{n("src"), {Name: "call", Caller: callThrough{}}, n("take"), n("out")},
				edges: []*flowruntime.Edge{e("src", "call"), e("call", "take"), e("take", "out")},
				takes: []string{"take"}, feeds: []string{"src"}, held: []string{"out"},
			},
			total: -1, stops: true,
		},
		{
			name: "broadcast, every branch taking",
			g: graph{
				nodes: []*flowruntime.Node{n("src"), {Name: "copy", Fanout: &flowruntime.Fanout{}}, n("take1"), n("take2"), n("out1"), n("out2")},
				edges: []*flowruntime.Edge{e("src", "copy"), e("copy", "take1"), e("copy", "take2"), e("take1", "out1"), e("take2", "out2")},
				takes: []string{"take1", "take2"}, feeds: []string{"src"}, held: []string{"out1", "out2"},
			},
			total: -1, stops: true,
		},
		{
			name: "broadcast, one branch still reading",
			g: graph{
				nodes: []*flowruntime.Node{n("src"), {Name: "copy", Fanout: &flowruntime.Fanout{}}, n("take"), n("some"), n("every")},
				edges: []*flowruntime.Edge{e("src", "copy"), e("copy", "take"), e("take", "some"), e("copy", "every")},
				takes: []string{"take"}, feeds: []string{"src"}, all: []string{"every", "some"},
			},
			total: 5000, stops: false,
		},
		{
			name: "merge of two sources",
			g: graph{
				nodes: []*flowruntime.Node{n("src1"), n("src2"), {Name: "both", Merge: true}, n("take"), n("out")},
				edges: []*flowruntime.Edge{e("src1", "both"), e("src2", "both"), e("both", "take"), e("take", "out")},
				takes: []string{"take"}, feeds: []string{"src1", "src2"}, held: []string{"out"},
			},
			total: -1, stops: true,
		},
	}
	for _, tt := range tests {
		for _, fused := range []bool{true, false} {
			name := tt.name + map[bool]string{true: ", fused", false: ", unfused"}[fused]
			t.Run(name, func(t *testing.T) {
				bound := int64(count + capacity*len(tt.g.edges) + batch)
				b := newBudget(bound)
				if !tt.stops {
					b = newBudget(1 << 62)
				}
				byName := map[string]*flowruntime.Node{}
				g := &flowruntime.Graph{Pipeline: "p", Edges: tt.g.edges}
				for _, nd := range tt.g.nodes {
					nd := *nd
					byName[nd.Name] = &nd
					g.Nodes = append(g.Nodes, &nd)
				}
				var feeds []*feed
				for _, name := range tt.g.feeds {
					f := newFeed(tt.total, per, b)
					feeds = append(feeds, f)
					byName[name].Source = f
				}
				for _, name := range tt.g.takes {
					byName[name].Processor = &first{left: count}
				}
				for _, nd := range g.Nodes {
					if nd.Source == nil && nd.Processor == nil && nd.Caller == nil && nd.Fanout == nil && !nd.Merge && len(outputs(g, nd.Name)) > 0 {
						nd.Processor = passThrough()
					}
				}
				sinks := map[string]*collect{}
				quit := make(chan struct{})
				for _, name := range tt.g.held {
					s := &heldSink{feeds: feeds, b: b, quit: quit}
					byName[name].Sink = s
					sinks[name] = &s.collect
				}
				for _, name := range tt.g.all {
					s := &collect{}
					byName[name].Sink = s
					sinks[name] = s
				}
				ex := run(t, g, flowruntime.Options{BatchSize: batch, NoFusion: !fused})
				t.Cleanup(func() { close(quit) }) // runs before run's Kill
				waitDone(t, ex)
				if err := ex.Wait(); err != nil {
					t.Fatalf("Wait: %v", err)
				}
				var emitted int64
				for i, f := range feeds {
					emitted += f.emitted.Load()
					if f.acked.Load() != f.emitted.Load() {
						t.Errorf("feed %d: acknowledged %d of %d emitted records", i, f.acked.Load(), f.emitted.Load())
					}
				}
				if tt.stops && emitted > bound {
					t.Errorf("the sources emitted %d records to give a take of %d; want at most %d (count + edge capacities + batch)", emitted, count, bound)
				}
				if !tt.stops && emitted != int64(tt.total*len(feeds)) {
					t.Errorf("the sources emitted %d records, want all %d: a branch still reads", emitted, tt.total*len(feeds))
				}
				for name, s := range sinks {
					want := count
					if name == "every" {
						want = tt.total
					}
					if got := s.len(); got != want {
						t.Errorf("sink %s got %d records, want %d", name, got, want)
					}
				}
			})
		}
	}
}

func outputs(g *flowruntime.Graph, name string) []string {
	var out []string
	for _, e := range g.Edges {
		if e.From == name {
			out = append(out, e.To)
		}
	}
	return out
}

// TestTakeOfZeroStopsItsSource: a take that wants nothing stops the source
// before it has filled more than the plan holds.
func TestTakeOfZeroStopsItsSource(t *testing.T) {
	b := newBudget(1 << 62)
	src := newFeed(-1, 8, b)
	sink := &collect{}
	g := chain(32, src, sink, &first{left: 0})
	ex := run(t, g, flowruntime.Options{BatchSize: 16})
	waitDone(t, ex)
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if n := src.emitted.Load(); n > 2*32+16 {
		t.Errorf("the source emitted %d records for a take of 0; want at most %d", n, 2*32+16)
	}
	if sink.len() != 0 {
		t.Errorf("sink got %d records, want none", sink.len())
	}
}
