package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
	"golang.org/x/time/rate"

	"github.com/hashicorp/go-hclog"
)

// ErrKilled is returned by Execution.Wait after Kill: records in flight were
// abandoned and their sources not acknowledged.
var ErrKilled = errors.New("execution killed")

// StageError is the error that fails an execution because of one stage:
// its policy is stop, or its retries ran out with no dead-letter edge, or it
// returned an error outside any record (a source's Run, a sink's Close).
type StageError struct {
	Pipeline, Stage string
	// HasRecord is true when the error concerns a record, found at
	// Position of source stage Source (for a sink batch: its first record).
	HasRecord bool
	Source    string
	Position  int64
	Err       error
}

// Error says which pipeline, stage and record failed, and why.
func (e *StageError) Error() string {
	if e.HasRecord {
		return fmt.Sprintf("pipeline %q, stage %q, record %s:%d: %v", e.Pipeline, e.Stage, e.Source, e.Position, e.Err)
	}
	return fmt.Sprintf("pipeline %q, stage %q: %v", e.Pipeline, e.Stage, e.Err)
}

// Unwrap returns the stage's own error.
func (e *StageError) Unwrap() error { return e.Err }

// Execution is a running graph.
type Execution struct {
	pipeline  string
	clock     Clock
	vc        *VirtualClock
	log       hclog.Logger
	batchSize int
	pool      *batchPool
	nodes     []*node
	topo      []*node
	edges     []*edge

	// runCtx ends on Kill or failure; srcCtx also on Stop. opCtx is runCtx
	// marked for the virtual clock: what operators get.
	runCtx, srcCtx, opCtx context.Context
	runCancel, srcCancel  context.CancelFunc

	wg   sync.WaitGroup
	done chan struct{}

	mu     sync.Mutex
	err    error
	killed bool

	inFlight, peak           atomic.Int64
	bytesInFlight, peakBytes atomic.Int64
	acks                     atomic.Int64
	// liveSinks counts the sinks still running.
	liveSinks atomic.Int64

	// emitGate is held for reading by every Emit and Reject, and for
	// writing by a snapshot while it pauses the sources; snapshots lets
	// one snapshot run at a time; snapMu guards marking and the nodes'
	// final states.
	emitGate  sync.RWMutex
	snapshots sync.Mutex
	snapMu    sync.Mutex
	marking   *mark
	// keepFinal makes the stateful stages save their final state as they
	// end (Options.Snapshots).
	keepFinal bool
	// held is set while the emit gate is held for Options.HoldSources;
	// holdOnce lets it go once.
	held     atomic.Bool
	holdOnce sync.Once
}

// node is a Node with its edges, counters and policy.
type node struct {
	spec   *Node
	ex     *Execution
	in     []*edge
	out    []*edge
	dl     *edge
	policy onerror.Policy
	log    hclog.Logger
	task   *task

	received, emitted, errors, skipped, deadLettered, dropped, retries atomic.Int64
	// busy is the time the node spent working, in nanoseconds (see
	// NodeStats.Busy); writes, for a sink, times its Write calls.
	busy   atomic.Int64
	writes *histogram
	// tap holds the taps attached to the node, nil when there are none
	// (see Execution.Tap); tapDropped counts the records they missed.
	tap        atomic.Pointer[tapSet]
	tapDropped atomic.Int64
	// skipWarn and deadWarn limit the warnings about single records (see
	// warnFirst).
	skipWarn, deadWarn rate.Sometimes

	// ended is set once the node's goroutine has finished; final and
	// finalErr are then its last saved state. Guarded by ex.snapMu.
	ended    bool
	final    []byte
	finalErr error
}

// Start validates g and starts running it. It returns an error, and starts
// nothing, when the graph is malformed. When ctx ends the execution stops
// gracefully, as with Stop.
func Start(ctx context.Context, g *Graph, opts Options) (*Execution, error) {
	if g == nil {
		return nil, errors.New("runtime: nil graph")
	}
	order, err := validate(g)
	if err != nil {
		return nil, err
	}
	ex := &Execution{
		pipeline:  g.Pipeline,
		clock:     opts.Clock,
		log:       opts.Logger,
		batchSize: opts.BatchSize,
		keepFinal: opts.Snapshots,
		done:      make(chan struct{}),
	}
	if ex.clock == nil {
		ex.clock = RealClock{}
	}
	ex.vc, _ = ex.clock.(*VirtualClock)
	if ex.log == nil {
		ex.log = hclog.NewNullLogger()
	}
	if ex.batchSize <= 0 {
		ex.batchSize = DefaultBatchSize
	}
	ex.pool = newBatchPool(ex.batchSize)
	ex.build(g, order)
	if opts.HoldSources {
		ex.emitGate.Lock()
		ex.held.Store(true)
	}

	base := context.WithoutCancel(ctx)
	ex.runCtx, ex.runCancel = context.WithCancel(base)
	ex.srcCtx, ex.srcCancel = context.WithCancel(ex.runCtx)
	ex.opCtx = ex.runCtx
	if ex.vc != nil {
		ex.opCtx = context.WithValue(ex.runCtx, trackKey{}, ex.vc)
		ex.srcCtx = context.WithValue(ex.srcCtx, trackKey{}, ex.vc)
	}
	loops := ex.plan(opts.NoFusion)
	if ex.vc != nil {
		ex.vc.attach(len(loops))
	}
	stopWatch := context.AfterFunc(ctx, ex.Stop)
	for _, l := range loops {
		ex.wg.Add(1)
		go ex.runTask(l)
	}
	go func() {
		ex.wg.Wait()
		ex.closeSources()
		stopWatch()
		ex.runCancel()
		close(ex.done)
	}()
	return ex, nil
}

// Stop stops the execution gracefully: the sources' context is cancelled so
// they stop at a checkpoint, what is in flight drains through every stage,
// holders flush and sinks close. It does not wait; use Wait.
func (e *Execution) Stop() {
	e.srcCancel()
	e.LetSourcesGo()
}

// LetSourcesGo lets the sources held by Options.HoldSources go. Only the
// first call does anything.
func (e *Execution) LetSourcesGo() {
	e.holdOnce.Do(func() {
		if e.held.Swap(false) {
			e.emitGate.Unlock()
		}
	})
}

// Kill stops the execution at once: every stage returns as soon as it can,
// sinks are closed, and what was in flight is abandoned (not acknowledged).
func (e *Execution) Kill() {
	e.mu.Lock()
	select {
	case <-e.done:
	default:
		e.killed = true
		if e.err == nil {
			e.err = ErrKilled
		}
	}
	e.mu.Unlock()
	e.runCancel()
	e.LetSourcesGo()
}

// Wait waits until the execution has finished and returns nil after end of
// stream or Stop, ErrKilled after Kill, or the first error that failed it.
func (e *Execution) Wait() error {
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Done is closed when the execution has finished.
func (e *Execution) Done() <-chan struct{} { return e.done }

// fail records err as the execution's error, unless one is already there,
// and stops everything at once.
func (e *Execution) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	e.runCancel()
	e.LetSourcesGo()
}

// failAfterDrain records err as the execution's error, unless one is
// already there, and stops the sources gracefully: what they emitted before
// drains through every stage and is written, and Wait then returns err.
func (e *Execution) failAfterDrain(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	e.srcCancel()
	e.LetSourcesGo()
}

func (e *Execution) failing() bool { return e.runCtx.Err() != nil }

// hasFailed reports whether the execution has an error, ending it now or
// after a drain, or was killed.
func (e *Execution) hasFailed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err != nil
}

func (e *Execution) addInFlight(n, bytes int64) {
	v := e.inFlight.Add(n)
	if n > 0 {
		for p := e.peak.Load(); v > p && !e.peak.CompareAndSwap(p, v); p = e.peak.Load() {
		}
	}
	if bytes != 0 {
		v := e.bytesInFlight.Add(bytes)
		if bytes > 0 {
			for p := e.peakBytes.Load(); v > p && !e.peakBytes.CompareAndSwap(p, v); p = e.peakBytes.Load() {
			}
		}
	}
}

// Stats returns a snapshot of the execution's counters.
func (e *Execution) Stats() Stats {
	s := Stats{
		Pipeline:          e.pipeline,
		InFlight:          e.inFlight.Load(),
		PeakInFlight:      e.peak.Load(),
		BytesInFlight:     e.bytesInFlight.Load(),
		PeakBytesInFlight: e.peakBytes.Load(),
		Acks:              e.acks.Load(),
	}
	for _, n := range e.nodes {
		s.Nodes = append(s.Nodes, NodeStats{
			Name:         n.spec.Name,
			Kind:         n.spec.Kind(),
			Own:          n.ownCounts(),
			In:           n.received.Load(),
			Out:          n.emitted.Load(),
			Errors:       n.errors.Load(),
			Skipped:      n.skipped.Load(),
			DeadLettered: n.deadLettered.Load(),
			Dropped:      n.dropped.Load(),
			Retries:      n.retries.Load(),
			Busy:         time.Duration(n.busy.Load()),
			Writes:       n.writes.snapshot(),
			TapDropped:   n.tapDropped.Load(),
		})
	}
	for _, ed := range e.edges {
		s.Edges = append(s.Edges, EdgeStats{
			From:       ed.spec.From,
			To:         ed.spec.To,
			Capacity:   int(ed.capacity),
			Bytes:      ed.capBytes,
			Fill:       ed.fill.Load(),
			FillBytes:  ed.fillBytes.Load(),
			Dropped:    ed.dropped.Load(),
			WhenFull:   ed.mode,
			DeadLetter: ed.spec.DeadLetter,
		})
	}
	return s
}

// ownCounts returns the counters the node's operator keeps, if it keeps any.
func (n *node) ownCounts() []Count {
	if r, ok := n.spec.Operator().(CountReporter); ok {
		return r.Counts()
	}
	return nil
}

// Node returns the counters of the node named name, and false if there is
// none.
func (s Stats) Node(name string) (NodeStats, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeStats{}, false
}

// Capacity is the sum of the edge capacities: the most records the
// pipeline's edges may hold.
func (s Stats) Capacity() int64 {
	var c int64
	for _, e := range s.Edges {
		c += int64(e.Capacity)
	}
	return c
}

// build makes the nodes and edges; order is a topological order of g.Nodes.
func (ex *Execution) build(g *Graph, order []int) {
	byName := make(map[string]*node, len(g.Nodes))
	ex.nodes = make([]*node, len(g.Nodes))
	for i, spec := range g.Nodes {
		n := &node{spec: spec, ex: ex, policy: spec.OnError.Resolve(role(spec)), log: ex.log.Named(spec.Name),
			skipWarn: rate.Sometimes{First: warnFirst, Interval: warnInterval},
			deadWarn: rate.Sometimes{First: warnFirst, Interval: warnInterval}}
		if spec.Sink != nil {
			n.writes = newHistogram(WriteBuckets)
		}
		ex.nodes[i] = n
		byName[spec.Name] = n
	}
	for _, spec := range g.Edges {
		e := &edge{
			spec:     spec,
			capacity: int64(spec.Capacity),
			capBytes: spec.Bytes,
			ex:       ex,
			from:     byName[spec.From],
			to:       byName[spec.To],
			mode:     spec.WhenFull,
			dropWarn: rate.Sometimes{First: warnFirst, Interval: warnInterval},
		}
		if e.capacity <= 0 {
			e.capacity = DefaultCapacity
		}
		ex.edges = append(ex.edges, e)
		if spec.DeadLetter {
			e.from.dl = e
		} else {
			// What leaves the node on this edge is tapped here, except on
			// the later branches of a broadcast, copies of the first's.
			if f := e.from.spec.Fanout; f == nil || f.Mode != Broadcast || len(e.from.out) == 0 {
				e.tapFrom = e.from
			}
			e.from.out = append(e.from.out, e)
		}
		e.to.in = append(e.to.in, e)
	}
	// Keep nodes in topological order for planning loops.
	sorted := make([]*node, len(order))
	for i, j := range order {
		sorted[i] = ex.nodes[j]
	}
	ex.topo = sorted
}
