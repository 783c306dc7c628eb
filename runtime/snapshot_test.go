package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// seqSource emits {"i": i} for i from its start to count, per records an
// Emit, keeping a checkpoint (the next i whose record is not finished) and
// resuming from one.
type seqSource struct {
	count, per int
	start      int64
	mu         sync.Mutex
	cp         *flowruntime.Checkpoint
}

func (s *seqSource) Run(ctx context.Context, out flowruntime.Emitter) error {
	s.mu.Lock()
	s.cp = flowruntime.NewCheckpoint(s.start)
	cp := s.cp
	s.mu.Unlock()
	for i := int(s.start); i < s.count; i += s.per {
		n := min(s.per, s.count-i)
		recs := make([]flowruntime.Record, n)
		for j := range recs {
			recs[j] = flowruntime.Record{Fields: map[string]any{"i": int64(i + j)}}
		}
		if err := out.Emit(ctx, recs, cp.Track(int64(i+n))); err != nil {
			return nil
		}
	}
	return nil
}

func (s *seqSource) Checkpoint() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cp == nil {
		return s.start
	}
	return s.cp.Committed()
}

func (s *seqSource) Resume(cp any) error {
	f, ok := cp.(float64)
	if !ok {
		return errors.New("not a number")
	}
	s.start = int64(f)
	return nil
}

// summer is a holder that adds up i and emits the total at the end of the
// stream; its state is the total and the count of records it took.
type summer struct {
	sum, n int64
}

func (s *summer) Process(r flowruntime.Record, emit func(flowruntime.Record)) error {
	s.sum += field(r)
	s.n++
	return nil
}

func (s *summer) Held() int { return int(s.n) }

func (s *summer) Flush(emit func(flowruntime.Record)) error {
	emit(flowruntime.Record{Fields: map[string]any{"i": s.sum, "n": s.n}})
	s.sum, s.n = 0, 0
	return nil
}

func (s *summer) SaveState() ([]byte, error) { return json.Marshal([2]int64{s.sum, s.n}) }

func (s *summer) RestoreState(b []byte) error {
	var v [2]int64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.sum, s.n = v[0], v[1]
	return nil
}

// keepSink collects what it is given; its state is how many records it
// holds, and restoring cuts it back to that many, as a file sink truncates
// its file to its committed length.
type keepSink struct {
	collect
}

func (k *keepSink) SaveState() ([]byte, error) { return []byte(strconv.Itoa(k.len())), nil }

func (k *keepSink) RestoreState(b []byte) error {
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.recs = k.recs[:n]
	k.mu.Unlock()
	return nil
}

// evens drops the records with an odd i.
var evens = proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
	if field(r)%2 == 0 {
		emit(r)
	}
	return nil
})

// snapshotGraph is src -> evens -> fan -> {out, sum -> total}, merged
// again in both: a diamond with a holder on one branch.
func snapshotGraph(src *seqSource, out, total *keepSink, sum *summer) *flowruntime.Graph {
	return &flowruntime.Graph{Pipeline: "p",
		Nodes: []*flowruntime.Node{
			{Name: "src", Source: src},
			{Name: "evens", Processor: evens},
			{Name: "fan", Fanout: &flowruntime.Fanout{Mode: flowruntime.Broadcast}},
			{Name: "out", Sink: out},
			{Name: "sum", Processor: sum},
			{Name: "total", Sink: total},
		},
		Edges: []*flowruntime.Edge{
			{From: "src", To: "evens", Capacity: 64},
			{From: "evens", To: "fan", Capacity: 64},
			{From: "fan", To: "out", Capacity: 64},
			{From: "fan", To: "sum", Capacity: 64},
			{From: "sum", To: "total", Capacity: 64},
		},
	}
}

func TestSnapshotIsConsistent(t *testing.T) {
	src := &seqSource{count: 200_000, per: 10}
	out, total, sum := &keepSink{}, &keepSink{}, &summer{}
	ex := run(t, snapshotGraph(src, out, total, sum), flowruntime.Options{BatchSize: 16, Snapshots: true})
	var taken int
	for {
		snap, err := ex.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		taken++
		var pos, written int
		var held [2]int64
		mustJSON(t, snap.States["src"], &pos)
		mustJSON(t, snap.States["out"], &written)
		mustJSON(t, snap.States["sum"], &held)
		// Every record before pos went through: half of them (the evens)
		// are written, and the holder holds exactly those, or, at the end
		// of the stream, has flushed them as one total.
		want := (pos + 1) / 2
		if pos == src.count && held[1] == 0 {
			var totals int
			mustJSON(t, snap.States["total"], &totals)
			if totals != 1 {
				t.Fatalf("snapshot %d: the holder flushed, but the total sink wrote %d records", taken, totals)
			}
			held[1] = int64(want)
		}
		if written != want || held[1] != int64(want) {
			t.Fatalf("snapshot %d: source at %d, sink wrote %d, holder holds %d; want %d and %d", taken, pos, written, held[1], want, want)
		}
		if pos == src.count {
			break
		}
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if taken < 2 {
		t.Errorf("only %d snapshots taken during the run", taken)
	}
	final, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(final.States["src"]); got != strconv.Itoa(src.count) {
		t.Errorf("final source state %s, want %d", got, src.count)
	}
	if got := string(final.States["out"]); got != strconv.Itoa(src.count/2) {
		t.Errorf("final sink state %s, want %d", got, src.count/2)
	}
}

// TestSnapshotRestart kills a run after a snapshot and restores a second
// one from it: the outputs equal those of an uninterrupted run.
func TestSnapshotRestart(t *testing.T) {
	const count = 50_000
	want := func() (out, total []flowruntime.Record) {
		o, tt := &keepSink{}, &keepSink{}
		ex := run(t, snapshotGraph(&seqSource{count: count, per: 7}, o, tt, &summer{}), flowruntime.Options{BatchSize: 16})
		if err := ex.Wait(); err != nil {
			t.Fatal(err)
		}
		return o.records(), tt.records()
	}
	wantOut, wantTotal := want()

	out, total := &keepSink{}, &keepSink{}
	src := &seqSource{count: count, per: 7}
	ex := run(t, snapshotGraph(src, out, total, &summer{}), flowruntime.Options{BatchSize: 16, Snapshots: true})
	waitFor(t, "some output", func() bool { return out.len() > count/8 })
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// More is written after the snapshot, then the run dies.
	waitFor(t, "more output", func() bool { return out.len() > count/4 })
	ex.Kill()
	if err := ex.Wait(); !errors.Is(err, flowruntime.ErrKilled) {
		t.Fatalf("killed run: %v", err)
	}
	if _, err := ex.Snapshot(context.Background()); !errors.Is(err, flowruntime.ErrNoSnapshot) {
		t.Errorf("snapshot of a killed run: %v, want ErrNoSnapshot", err)
	}

	src2, sum2 := &seqSource{count: count, per: 7}, &summer{}
	var cp any
	mustJSON(t, snap.States["src"], &cp)
	for _, step := range []error{src2.Resume(cp), sum2.RestoreState(snap.States["sum"]), out.RestoreState(snap.States["out"])} {
		if step != nil {
			t.Fatal(step)
		}
	}
	if _, ok := snap.States["total"]; ok {
		if err := total.RestoreState(snap.States["total"]); err != nil {
			t.Fatal(err)
		}
	}
	ex2 := run(t, snapshotGraph(src2, out, total, sum2), flowruntime.Options{BatchSize: 16, Snapshots: true})
	if err := ex2.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := out.records(); !slices.EqualFunc(got, wantOut, sameI) {
		t.Errorf("restarted output: %d records, want %d as in one run", len(got), len(wantOut))
	}
	if got := total.records(); !slices.EqualFunc(got, wantTotal, sameI) {
		t.Errorf("restarted total %v, want %v", got, wantTotal)
	}
}

func TestSnapshotNeedsStatefulHolders(t *testing.T) {
	release := make(chan struct{})
	g := chain(16, &gen{count: -1, per: 4}, &gateSink{release: release}, &plainHolder{})
	ex := run(t, g, flowruntime.Options{})
	defer close(release)
	if _, err := ex.Snapshot(context.Background()); !errors.Is(err, flowruntime.ErrNoSnapshot) {
		t.Errorf("snapshot with a holder keeping no state: %v, want ErrNoSnapshot", err)
	}
}

func TestSnapshotGivesUpWithItsContext(t *testing.T) {
	// The sink never writes, so the marker never arrives.
	release := make(chan struct{})
	src := &seqSource{count: 1 << 30, per: 4}
	ex := run(t, chain(16, src, &gateSink{release: release}), flowruntime.Options{})
	waitFor(t, "the sink to be held in its first write", func() bool {
		st, _ := ex.Stats().Node("sink")
		return st.In > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ex.Snapshot(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("snapshot: %v, want the context's error", err)
	}
	close(release)
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
}

// plainHolder holds the last record and keeps no state.
type plainHolder struct{ last *flowruntime.Record }

func (h *plainHolder) Process(r flowruntime.Record, emit func(flowruntime.Record)) error {
	if h.last != nil {
		emit(*h.last)
	}
	h.last = &r
	return nil
}

func (h *plainHolder) Held() int {
	if h.last == nil {
		return 0
	}
	return 1
}

func (h *plainHolder) Flush(emit func(flowruntime.Record)) error {
	if h.last != nil {
		emit(*h.last)
	}
	return nil
}

func sameI(a, b flowruntime.Record) bool { return field(a) == field(b) }

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("state %q: %v", b, err)
	}
}

// shuffled is an unordered caller that passes records through after a
// pause that depends on the record, so that calls finish out of order.
type shuffled struct{}

func (shuffled) Call(ctx context.Context, r flowruntime.Record) (flowruntime.Record, error) {
	if field(r)%7 == 0 {
		time.Sleep(50 * time.Microsecond)
	}
	return r, nil
}
func (shuffled) Concurrency() int { return 4 }
func (shuffled) Ordered() bool    { return false }

// TestSnapshotThroughMergeAndCalls: two sources merged, then a buffered
// call with calls in flight: each snapshot's sink holds exactly the
// records before both sources' positions.
func TestSnapshotThroughMergeAndCalls(t *testing.T) {
	a, b := &seqSource{count: 30_000, per: 5}, &seqSource{count: 20_000, per: 3}
	out := &keepSink{}
	g := &flowruntime.Graph{Pipeline: "p",
		Nodes: []*flowruntime.Node{
			{Name: "a", Source: a}, {Name: "b", Source: b},
			{Name: "both", Merge: true},
			{Name: "call", Caller: shuffled{}},
			{Name: "out", Sink: out},
		},
		Edges: []*flowruntime.Edge{
			{From: "a", To: "both", Capacity: 32}, {From: "b", To: "both", Capacity: 32},
			{From: "both", To: "call", Capacity: 32}, {From: "call", To: "out", Capacity: 32},
		},
	}
	ex := run(t, g, flowruntime.Options{BatchSize: 8, Snapshots: true})
	for taken := 1; ; taken++ {
		snap, err := ex.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var pa, pb, written int
		mustJSON(t, snap.States["a"], &pa)
		mustJSON(t, snap.States["b"], &pb)
		mustJSON(t, snap.States["out"], &written)
		if written != pa+pb {
			t.Fatalf("snapshot %d: sources at %d and %d, sink wrote %d", taken, pa, pb, written)
		}
		if pa == a.count && pb == b.count {
			break
		}
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotOfHeldSources: with HoldSources, a snapshot sees the pipeline
// before any record, and LetSourcesGo lets the sources go.
func TestSnapshotOfHeldSources(t *testing.T) {
	src := &seqSource{count: 1000, per: 10}
	out := &keepSink{}
	ex := run(t, chain(16, src, out), flowruntime.Options{Snapshots: true, HoldSources: true})
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(snap.States["src"]), "0"; got != want {
		t.Errorf("first snapshot: source at %s, want %s", got, want)
	}
	if got := string(snap.States["sink"]); got != "0" {
		t.Errorf("first snapshot: sink holds %s records, want 0", got)
	}
	if again, err := ex.Snapshot(context.Background()); err != nil || string(again.States["sink"]) != "0" {
		t.Errorf("a second snapshot before LetSourcesGo: %v, %v; want the sink still empty", again, err)
	}
	ex.LetSourcesGo()
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.len() != 1000 {
		t.Errorf("after the first snapshot the sink got %d records, want 1000", out.len())
	}
}

// TestHeldSourcesLetGoOnStop: held sources that never see a snapshot are
// let go by Stop, and the execution ends.
func TestHeldSourcesLetGoOnStop(t *testing.T) {
	src := &seqSource{count: 1 << 30, per: 10}
	ex := run(t, chain(16, src, &keepSink{}), flowruntime.Options{HoldSources: true})
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
}
