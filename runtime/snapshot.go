package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A snapshot is a consistent cut of an execution: every source's position
// and every stateful stage's state such that a new execution restored from
// them, reading its sources from those positions, produces exactly what the
// rest of this one would have.
//
// It is taken at a batch boundary of the sources, with a marker through the
// DAG:
//
//  1. The sources are paused between two Emit calls (the emit gate), so
//     nothing enters the pipeline until the snapshot is taken.
//  2. A marker batch is queued on every source's output (and dead-letter)
//     edge, behind what the source emitted. Every stage forwards it, in
//     order, on every output once what came before it is handled: a
//     processor chain sends its pending batches first and saves the state
//     of its Stateful stages, and a holder lets go of the acknowledgements
//     it held (its state now carries those records); a buffered call waits
//     for its calls in flight; a merge forwards it once it came on every
//     open input (taking nothing more from an input that delivered it); a
//     sink saves its state (made durable) and reports.
//  3. Once every stateful stage and every sink reported (or had finished,
//     leaving its final state), every record the sources emitted is
//     finished, so each source's Checkpoint is exactly where it was
//     paused. The sources go on.
//
// Since the sources are paused, no stage needs to hold back input while it
// waits for the marker on another one, and the cost is the time the marker
// takes to cross the pipeline, during which the sources wait.

// Snapshot is a consistent checkpoint of an execution.
type Snapshot struct {
	// States maps a stage name to its state: a source's Checkpoint as
	// JSON, or what a Stateful processor or sink saved. Stages that keep
	// nothing are absent.
	States map[string][]byte
}

// ErrNoSnapshot is returned by Snapshot for an execution that cannot be
// checkpointed: it failed or was killed, or a stage holds records but keeps
// no state.
var ErrNoSnapshot = errors.New("no consistent snapshot")

// mark is the marker of one snapshot under way: a batch whose mark is set
// carries no records.
type mark struct {
	ex      *Execution
	mu      sync.Mutex
	states  map[string][]byte
	err     error
	waiting map[*node]bool
	done    chan struct{}
}

// report records n's state (or the error saving it) and counts n as done.
func (m *mark) report(n *node, state []byte, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.waiting[n] {
		return
	}
	delete(m.waiting, n)
	if err != nil && m.err == nil {
		m.err = fmt.Errorf("stage %q: save state: %w", n.spec.Name, err)
	}
	if state != nil {
		m.states[n.spec.Name] = state
	}
	if len(m.waiting) == 0 {
		close(m.done)
	}
}

// saveState saves n's state if its operator is Stateful and reports it to
// m (a nil m only keeps it as n's final state).
func (n *node) saveState(m *mark, final bool) {
	st := n.stateful()
	var state []byte
	var err error
	if st != nil {
		state, err = st.SaveState()
	}
	if final {
		n.ex.finished(n, state, err)
		return
	}
	m.report(n, state, err)
}

// end records that n's goroutine finished, with its final state when the
// execution keeps final states.
func (n *node) end() {
	if n.ex.keepFinal {
		n.saveState(nil, true)
		return
	}
	n.ex.finished(n, nil, nil)
}

// isReporter reports whether the snapshot waits for n: sinks and stateful
// stages.
func isReporter(n *node) bool { return n.spec.Sink != nil || n.stateful() != nil }

func (n *node) stateful() Stateful { return n.spec.Stateful() }

// finished keeps n's final state, for the snapshots taken after n ended, and
// reports it to the snapshot under way.
func (ex *Execution) finished(n *node, state []byte, err error) {
	ex.snapMu.Lock()
	n.final, n.finalErr, n.ended = state, err, true
	m := ex.marking
	ex.snapMu.Unlock()
	if m != nil {
		m.report(n, state, err)
	}
}

// pushMark queues m's marker on e, whatever e's credit or mode, and reports
// false when e is closed.
func (e *edge) pushMark(m *mark) bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false
	}
	e.q = append(e.q, &batch{mark: m})
	wake := e.consWaiting
	e.consWaiting = false
	e.mu.Unlock()
	if wake {
		e.consumer.notify()
	}
	return true
}

// forwardMark queues m on every output edge of n, the dead-letter edge
// included.
func (n *node) forwardMark(m *mark) {
	for _, e := range n.out {
		e.pushMark(m)
	}
	n.dl.pushMark(m)
}

// Snapshot takes a consistent snapshot of the running execution (see
// above), or, once it has finished after end of stream or Stop, returns its
// final state. It fails with ErrNoSnapshot when the execution failed or was
// killed, or when a stage holds records but keeps no state, and with
// ctx.Err() when ctx ends first (the sources then go on).
func (e *Execution) Snapshot(ctx context.Context) (*Snapshot, error) {
	if err := e.snapshottable(); err != nil {
		return nil, err
	}
	e.snapshots.Lock()
	defer e.snapshots.Unlock()
	select {
	case <-e.done:
		return e.finalSnapshot()
	default:
	}
	snap, err := e.snapshotRunning(ctx)
	if errors.Is(err, errEnded) {
		// It ended meanwhile (the gate is let go: its sources could end).
		<-e.done
		return e.finalSnapshot()
	}
	return snap, err
}

// snapshotRunning takes the snapshot of the running execution; it returns
// errEnded when the execution ended first.
func (e *Execution) snapshotRunning(ctx context.Context) (*Snapshot, error) {
	// Sources held since the start are paused already (and stay so:
	// LetSourcesGo).
	if !e.held.Load() {
		if !e.pauseSources(ctx) {
			return nil, ctx.Err()
		}
		defer e.emitGate.Unlock()
	}
	m := &mark{ex: e, states: make(map[string][]byte), waiting: make(map[*node]bool), done: make(chan struct{})}
	e.snapMu.Lock()
	for _, n := range e.nodes {
		if isReporter(n) && !n.ended {
			m.waiting[n] = true
		}
	}
	for _, n := range e.nodes {
		if n.ended && n.final != nil {
			m.states[n.spec.Name] = n.final
		}
	}
	if len(m.waiting) == 0 {
		close(m.done)
	}
	e.marking = m
	e.snapMu.Unlock()
	defer func() {
		e.snapMu.Lock()
		e.marking = nil
		e.snapMu.Unlock()
	}()
	for _, n := range e.nodes {
		if n.spec.Source != nil {
			n.forwardMark(m)
		}
	}
	select {
	case <-m.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.runCtx.Done():
		return nil, errEnded
	}
	m.mu.Lock()
	err := m.err
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := e.awaitAcks(ctx); err != nil {
		return nil, err
	}
	if err := e.sourceStates(m.states); err != nil {
		return nil, err
	}
	return &Snapshot{States: m.states}, nil
}

// errEnded is what awaitAcks returns when the execution ended meanwhile.
var errEnded = errors.New("the execution ended")

// snapshottable reports why the execution cannot be snapshotted, if it
// cannot.
func (e *Execution) snapshottable() error {
	for _, n := range e.nodes {
		if _, holds := n.spec.Processor.(Holder); holds && n.stateful() == nil {
			return fmt.Errorf("%w: stage %q holds records but keeps no state", ErrNoSnapshot, n.spec.Name)
		}
	}
	return nil
}

// pauseSources takes the emit gate, so that no source is inside Emit or
// Reject and none can enter, and reports false if ctx ended first.
func (e *Execution) pauseSources(ctx context.Context) bool {
	locked := make(chan struct{})
	go func() {
		e.emitGate.Lock()
		close(locked)
	}()
	select {
	case <-locked:
		return true
	case <-ctx.Done():
		go func() {
			<-locked
			e.emitGate.Unlock()
		}()
		return false
	}
}

// awaitAcks waits until every acknowledgement unit is finished: they are
// released as the marker passes (the last ones by the goroutine that saw
// the marker, just before it reported), so the wait is short.
func (e *Execution) awaitAcks(ctx context.Context) error {
	for d := 10 * time.Microsecond; e.acks.Load() != 0; d = min(2*d, 10*time.Millisecond) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.runCtx.Done():
			return errEnded
		case <-time.After(d):
		}
	}
	return nil
}

// sourceStates adds every Checkpointer source's checkpoint to states.
func (e *Execution) sourceStates(states map[string][]byte) error {
	for _, n := range e.nodes {
		cp, ok := n.spec.Source.(Checkpointer)
		if !ok {
			continue
		}
		b, err := json.Marshal(cp.Checkpoint())
		if err != nil {
			return fmt.Errorf("source %q: checkpoint: %w", n.spec.Name, err)
		}
		states[n.spec.Name] = b
	}
	return nil
}

// finalSnapshot is the snapshot of a finished execution: the sources'
// checkpoints and the stages' final states.
func (e *Execution) finalSnapshot() (*Snapshot, error) {
	if err := e.Wait(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSnapshot, err)
	}
	states := make(map[string][]byte)
	e.snapMu.Lock()
	for _, n := range e.nodes {
		if n.finalErr != nil {
			e.snapMu.Unlock()
			return nil, fmt.Errorf("stage %q: save state: %w", n.spec.Name, n.finalErr)
		}
		if n.final != nil {
			states[n.spec.Name] = n.final
		}
	}
	e.snapMu.Unlock()
	if err := e.sourceStates(states); err != nil {
		return nil, err
	}
	return &Snapshot{States: states}, nil
}
