package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/state"
)

// ErrStopped is returned by Apply and Reload once Stop or Kill was called.
var ErrStopped = errors.New("supervisor stopped")

// Config is what a Supervisor needs to build and run pipelines.
type Config struct {
	// Registry builds runtime graphs from planned pipelines.
	Registry *operators.Registry
	// Logger receives one line per pipeline and reload; nil logs nothing.
	Logger hclog.Logger
	// Stdin and Stdout are given to the stdin source and the stdout sink.
	// Stdin should be a source.Feed (made once): every version of a
	// pipeline then reads it in turn, a handover losing nothing the old
	// version read ahead.
	Stdin  io.Reader
	Stdout io.Writer
	// Clock is the pipelines' time; nil is the real clock.
	Clock flowruntime.Clock
	// Load parses and plans the files again, for Reload. It returns the
	// plan, or ok = false once it has reported why there is none (the
	// diagnostics of an invalid edit, a file that cannot be read).
	Load func() (plan *planner.Plan, ok bool)
	// DrainTimeout bounds every graceful stop the supervisor makes: Stop,
	// and the drain of an old version in a handover or a removal. A
	// pipeline whose drain has not finished when it passes is killed: what
	// is still in flight is abandoned, not acknowledged (a durable source
	// delivers it again), and Wait returns a *runtime.DrainTimeoutError
	// for it. Zero waits without bound.
	DrainTimeout time.Duration
	// State, when set, is where each pipeline keeps its state: a fresh
	// start is restored from the pipeline's last snapshot, and a snapshot
	// is saved every CheckpointInterval (DefaultCheckpointInterval when
	// zero) and when the pipeline ends after end of stream or a drain.
	State              *state.Dir
	CheckpointInterval time.Duration
}

// Supervisor runs the pipelines of a plan and applies new plans to them.
// Its methods may be called from several goroutines; Apply and Reload are
// serialized.
type Supervisor struct {
	cfg Config
	log hclog.Logger

	// apply serializes Apply and Reload; plan belongs to it, and runs is
	// written only while holding it (and mu).
	apply sync.Mutex
	plan  *planner.Plan

	// mu guards runs and what the signal path and the waiters touch.
	mu      sync.Mutex
	runs    map[string]*run
	stopped bool
	killed  bool
	live    map[*run]bool
	busy    int
	idle    chan struct{}
	errs    []error
	// abandoned counts the records left in flight by killed executions.
	abandoned int64
	// keepers keep the pipelines' state, by pipeline name.
	keepers map[string]*keeper
	// started is set once Start has started every pipeline.
	started bool
	// reloads counts the reloads by outcome.
	reloads struct{ applied, rejected, failed atomic.Int64 }

	wg sync.WaitGroup
}

// run is one execution of one version of a pipeline.
type run struct {
	name     string
	pipeline *planner.Pipeline
	graph    *flowruntime.Graph
	exec     *flowruntime.Execution
	// finished is closed once the execution has ended and its end is
	// logged and counted; err is then its error.
	finished chan struct{}
	err      error
	// handover is set when the supervisor stopped it to replace or remove
	// it: its end is then logged by the reload, not as a finish.
	handover bool
	// keeper keeps the pipeline's state (nil without a state dir);
	// snapshots is closed once it stopped taking snapshots of exec.
	keeper    *keeper
	snapshots chan struct{}
}

// New returns a supervisor that runs nothing yet.
func New(cfg Config) *Supervisor {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Clock == nil {
		cfg.Clock = flowruntime.RealClock{}
	}
	idle := make(chan struct{})
	close(idle)
	return &Supervisor{cfg: cfg, log: log, runs: map[string]*run{}, live: map[*run]bool{}, idle: idle,
		keepers: map[string]*keeper{}}
}

// Report says what Apply did.
type Report struct {
	// Changes is the diff of the new plan against the running one.
	Changes planner.Changes
	// Handover is, per changed or removed pipeline, how long it took from
	// stopping the old version to the new one running (or the old one
	// drained, for a removed pipeline).
	Handover map[string]time.Duration
	// Took is how long the whole Apply took.
	Took time.Duration
}

// Start runs every pipeline of plan. It is Apply on a supervisor that runs
// nothing, except that when a pipeline fails to start the others are
// killed and the error returned.
func (s *Supervisor) Start(plan *planner.Plan) error {
	if plan == nil || len(plan.Pipelines) == 0 {
		return errors.New("no pipeline to run")
	}
	if _, err := s.Apply(plan); err != nil {
		s.Kill()
		s.wg.Wait()
		return err
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	return nil
}

// Ready reports whether the supervisor serves: Start has started every
// pipeline, and Stop or Kill has not been called.
func (s *Supervisor) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started && !s.stopped
}

// ReloadCounts counts reloads (Reload calls) by outcome.
type ReloadCounts struct {
	// Applied counts the reloads whose plan was applied, Rejected those
	// whose files were invalid (nothing changed), Failed those applied in
	// part because a pipeline could not start.
	Applied, Rejected, Failed int64
}

// Reloads returns the counts of reloads so far.
func (s *Supervisor) Reloads() ReloadCounts {
	return ReloadCounts{Applied: s.reloads.applied.Load(), Rejected: s.reloads.rejected.Load(), Failed: s.reloads.failed.Load()}
}

// Reload loads the files again with Config.Load and applies the plan. When
// Load reports no plan (an invalid edit), nothing changes: the running
// pipelines keep running untouched, and Reload returns nil.
func (s *Supervisor) Reload() error {
	if s.cfg.Load == nil {
		return errors.New("supervisor: no Load function to reload with")
	}
	s.apply.Lock()
	defer s.apply.Unlock()
	if s.isStopped() {
		return ErrStopped
	}
	plan, ok := s.cfg.Load()
	if !ok {
		s.reloads.rejected.Add(1)
		s.log.Warn("reload rejected: the running pipelines keep running unchanged")
		return nil
	}
	_, err := s.applyLocked(plan)
	switch {
	case err == nil:
		s.reloads.applied.Add(1)
	case !errors.Is(err, ErrStopped):
		s.reloads.failed.Add(1)
	}
	return err
}

// Apply diffs plan against the running plan and applies the difference:
// unchanged pipelines keep running untouched, removed ones drain and stop,
// added ones start, and each changed one hands over: its sources stop at a
// checkpoint, what is in flight drains to its sinks, and the new version
// starts from that checkpoint with sinks that append. Pipelines change
// concurrently. The error joins the pipelines that could not start.
func (s *Supervisor) Apply(plan *planner.Plan) (Report, error) {
	s.apply.Lock()
	defer s.apply.Unlock()
	return s.applyLocked(plan)
}

func (s *Supervisor) applyLocked(plan *planner.Plan) (Report, error) {
	if plan == nil {
		return Report{}, errors.New("supervisor: nil plan")
	}
	if !s.acquire() {
		return Report{}, ErrStopped
	}
	defer s.release()
	begin := time.Now()
	initial := s.plan == nil
	rep := Report{Changes: planner.Diff(s.plan, plan), Handover: map[string]time.Duration{}}

	type outcome struct {
		name string
		run  *run // the run now in place, nil when none
		took time.Duration
		err  error
	}
	results := make([]outcome, len(rep.Changes.Pipelines))
	var wg sync.WaitGroup
	for i, pc := range rep.Changes.Pipelines {
		old := s.runs[pc.Name]
		results[i] = outcome{name: pc.Name, run: old}
		if pc.Change == planner.Unchanged && old != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			var states map[string][]byte
			if old != nil {
				s.drain(old)
				if pc.Change == planner.Changed {
					states = s.handedOver(old, pc)
				}
			}
			var r *run
			var err error
			if pc.Change != planner.Removed {
				r, err = s.start(pc.New, states, pc.Change == planner.Changed)
			}
			results[i] = outcome{name: pc.Name, run: r, took: time.Since(t0), err: err}
		}()
	}
	wg.Wait()

	var errs []error
	s.mu.Lock()
	for i, pc := range rep.Changes.Pipelines {
		res := results[i]
		if res.run != nil {
			s.runs[res.name] = res.run
		} else {
			delete(s.runs, res.name)
		}
		if pc.Change != planner.Unchanged {
			rep.Handover[pc.Name] = res.took
		}
		if res.err != nil {
			errs = append(errs, res.err)
		}
	}
	s.mu.Unlock()
	s.plan = plan
	rep.Took = time.Since(begin)
	failed := map[string]error{}
	for _, res := range results {
		if res.err != nil {
			failed[res.name] = res.err
		}
	}
	s.logReport(rep, initial, failed)
	return rep, errors.Join(errs...)
}

// logReport logs one line per pipeline.
func (s *Supervisor) logReport(rep Report, initial bool, failed map[string]error) {
	for _, pc := range rep.Changes.Pipelines {
		args := []any{"pipeline", pc.Name}
		if err := failed[pc.Name]; err != nil {
			if !errors.Is(err, ErrStopped) {
				s.log.Error("pipeline could not start", "pipeline", pc.Name, "change", pc.Change.String(), "error", err)
			}
			continue
		}
		if initial {
			s.log.Info("pipeline started", "pipeline", pc.Name, "stages", len(pc.New.Stages), "bound_records", pc.New.Bound.Records)
			continue
		}
		if d, ok := rep.Handover[pc.Name]; ok {
			args = append(args, "took", d.Round(time.Microsecond).String())
		}
		switch pc.Change {
		case planner.Changed:
			args = append(args, "stages", pc.Summary())
			s.log.Info("pipeline changed: handed over", args...)
		case planner.Added:
			s.log.Info("pipeline added: started", args...)
		case planner.Removed:
			s.log.Info("pipeline removed: drained and stopped", args...)
		default:
			s.log.Info("pipeline unchanged: left untouched", args...)
		}
	}
	s.log.Debug("plan applied", "took", rep.Took.Round(time.Microsecond).String())
}

// drain stops r gracefully, within the drain timeout, and waits until it
// has ended.
func (s *Supervisor) drain(r *run) {
	s.mu.Lock()
	r.handover = true
	s.mu.Unlock()
	r.exec.StopWithin(s.cfg.DrainTimeout)
	<-r.finished
	var dt *flowruntime.DrainTimeoutError
	switch {
	case errors.As(r.err, &dt):
		// wait logged the records abandoned. A source checkpoint counts
		// only finished records, so a source that resumes reads them
		// again: this handover is at-least-once.
		s.log.Warn("old version killed at its drain timeout: a source that resumes reads the abandoned records again", "pipeline", r.name)
	case r.err != nil:
		s.log.Warn("old version had failed", "pipeline", r.name, "error", r.err)
	}
}

// handedOver returns, from the ended old version r of a changed pipeline,
// the state the new version takes over: the final snapshot of every source
// it keeps under the same name and kind and of every stateful stage it
// keeps unchanged. When r has no final snapshot (it was killed at its drain
// timeout) only the sources' checkpoints are handed over: what they count
// as finished.
func (s *Supervisor) handedOver(r *run, pc planner.PipelineChange) map[string][]byte {
	changed := map[string]bool{}
	for _, sc := range pc.Stages {
		changed[sc.Name] = true
	}
	var final map[string][]byte
	if snap, err := r.exec.Snapshot(context.Background()); err == nil {
		final = snap.States
	} else {
		s.log.Named(r.name).Debug("no final snapshot of the old version: only the sources' checkpoints are handed over", "error", err)
	}
	out := map[string][]byte{}
	for _, n := range r.graph.Nodes {
		was, now := r.pipeline.Stage(n.Name), pc.New.Stage(n.Name)
		if was == nil || now == nil || was.Kind != now.Kind || was.Block != now.Block {
			continue
		}
		if cp, ok := n.Source.(flowruntime.Checkpointer); ok {
			if b, err := json.Marshal(cp.Checkpoint()); err == nil {
				out[n.Name] = b
			}
			continue
		}
		if b, ok := final[n.Name]; ok && !changed[n.Name] && n.Sink == nil {
			out[n.Name] = b
		}
	}
	return out
}

// start builds p and starts it. Each stage named in states (handed over
// by the old version) starts from its state, and resume makes sinks keep
// what was written; a fresh start (not resume) with a state dir is
// restored from the pipeline's last snapshot instead.
func (s *Supervisor) start(p *planner.Pipeline, states map[string][]byte, resume bool) (*run, error) {
	log := s.log.Named(p.Name)
	env := operators.BuildEnv{
		Clock:      s.cfg.Clock,
		Logger:     log,
		Stdin:      s.cfg.Stdin,
		Stdout:     s.cfg.Stdout,
		Dir:        filepath.Dir(p.Range.Filename),
		Resume:     resume,
		KeepsState: s.cfg.State != nil,
	}
	g, err := s.cfg.Registry.BuildGraph(p, env)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", p.Name, err)
	}
	k := s.keeper(p.Name, log)
	if k != nil && !resume {
		if states, err = k.restore(g); err != nil {
			return nil, fmt.Errorf("pipeline %q: %w", p.Name, err)
		}
	}
	if err := applyStates(g, states, log); err != nil {
		if k != nil && !resume {
			err = fmt.Errorf("state file %s: %w", k.store.File(), err)
		}
		return nil, fmt.Errorf("pipeline %q: %w", p.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrStopped
	}
	exec, err := flowruntime.Start(context.Background(), g, flowruntime.Options{Clock: s.cfg.Clock, Logger: log, Snapshots: true, HoldSources: k != nil})
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", p.Name, err)
	}
	r := &run{name: p.Name, pipeline: p, graph: g, exec: exec, finished: make(chan struct{}), keeper: k}
	if k != nil {
		r.snapshots = make(chan struct{})
		go k.run(exec, r.snapshots)
	}
	s.live[r] = true
	s.acquireLocked()
	s.wg.Add(1)
	go s.wait(r)
	return r, nil
}

// wait waits for r to end, logs and counts its end.
func (s *Supervisor) wait(r *run) {
	defer s.wg.Done()
	err := r.exec.Wait()
	st := r.exec.Stats()
	log := s.log.Named(r.name)
	s.mu.Lock()
	handover, killed := r.handover, s.killed
	s.mu.Unlock()
	if r.keeper != nil {
		<-r.snapshots
		if err == nil {
			if serr := r.keeper.final(r.exec); serr != nil {
				log.Error("state not saved at the end", "error", serr)
				err = serr
			}
		}
	}
	// Where each source that keeps a checkpoint stopped: every record
	// before it is finished.
	for _, n := range r.graph.Nodes {
		if cp, ok := n.Source.(flowruntime.Checkpointer); ok {
			if handover {
				log.Debug("source checkpoint", "stage", n.Name, "checkpoint", cp.Checkpoint())
			} else {
				log.Info("source checkpoint", "stage", n.Name, "checkpoint", cp.Checkpoint())
			}
		}
	}
	args := []any{"pipeline", r.name, "records_in", st.SourceRecords(), "records_out", st.SinkRecords()}
	for _, n := range st.Nodes {
		for _, c := range n.NonZero() {
			args = append(args, n.Name+"."+c.Name, c.Value)
		}
	}
	if handover {
		log.Debug("old version ended", args...)
	} else {
		log.Info("pipeline finished", args...)
	}
	// A killed execution leaves on its edges the records it abandoned.
	var abandoned int64
	if errors.Is(err, flowruntime.ErrKilled) {
		abandoned = st.InFlight
		var dt *flowruntime.DrainTimeoutError
		switch {
		case errors.As(err, &dt):
			log.Error("drain timed out: pipeline killed, records in flight abandoned (not acknowledged)", "pipeline", r.name, "drain_timeout", dt.Timeout.String(), "abandoned", abandoned)
		case killed:
			log.Warn("pipeline killed: records in flight abandoned (not acknowledged)", "pipeline", r.name, "abandoned", abandoned)
		}
	}
	r.err = err
	s.mu.Lock()
	delete(s.live, r)
	s.abandoned += abandoned
	if err != nil {
		s.errs = append(s.errs, err)
	}
	s.mu.Unlock()
	close(r.finished)
	s.release()
}

// acquire counts an Apply as work in progress, or returns false once
// stopped.
func (s *Supervisor) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.acquireLocked()
	return true
}

func (s *Supervisor) acquireLocked() {
	if s.busy == 0 {
		s.idle = make(chan struct{})
	}
	s.busy++
}

func (s *Supervisor) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy--
	if s.busy == 0 {
		close(s.idle)
	}
}

func (s *Supervisor) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Idle returns a channel closed when no pipeline is running and no Apply is
// under way. A later Apply may start pipelines again: call Idle again then.
func (s *Supervisor) Idle() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idle
}

// Stop stops every pipeline gracefully (sources stop at a checkpoint, what
// is in flight drains, sinks close) and refuses later Applies. A pipeline
// whose drain outlasts Config.DrainTimeout is killed. It does not wait; use
// Wait.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for r := range s.live {
		r.exec.StopWithin(s.cfg.DrainTimeout)
	}
}

// Kill stops every pipeline at once, abandoning what is in flight: Wait then
// returns runtime.ErrKilled for each pipeline that was still running.
func (s *Supervisor) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped, s.killed = true, true
	for r := range s.live {
		r.exec.Kill()
	}
}

// Wait waits until every pipeline has ended (after they all finish, or
// after Stop or Kill) and no Apply is under way, and returns the errors of
// the executions that failed or were killed (runtime.ErrKilled, or a
// *runtime.DrainTimeoutError after a drain that outlasted its timeout).
func (s *Supervisor) Wait() error {
	<-s.Idle()
	s.apply.Lock()
	s.apply.Unlock()
	s.wg.Wait()
	return s.Err()
}

// Err returns the errors of the executions that failed so far, joined.
func (s *Supervisor) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// InFlight returns the number of records in flight in every running
// pipeline.
func (s *Supervisor) InFlight() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for r := range s.live {
		n += r.exec.Stats().InFlight
	}
	return n
}

// Abandoned returns the number of records that killed executions left in
// flight so far, not acknowledged: after Kill, after a drain that outlasted
// Config.DrainTimeout, in a stop or a handover.
func (s *Supervisor) Abandoned() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abandoned
}

// Pipelines returns the names of the pipelines in place, sorted.
func (s *Supervisor) Pipelines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.runs))
	for n := range s.runs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stats returns the counters of the running version of the pipeline named
// name, and false when there is none.
func (s *Supervisor) Stats(name string) (flowruntime.Stats, bool) {
	s.mu.Lock()
	r := s.runs[name]
	s.mu.Unlock()
	if r == nil {
		return flowruntime.Stats{}, false
	}
	return r.exec.Stats(), true
}

// Status is where a pipeline is in its life.
type Status uint8

// The statuses of a pipeline.
const (
	// Running: started, its sources read.
	Running Status = iota
	// Draining: stopping (Stop, or the old version in a handover or a
	// removal): its sources have stopped and what is in flight drains.
	Draining
	// Finished: ended after end of stream or a drain.
	Finished
	// Failed: ended with an error, or killed.
	Failed
)

var statusNames = [...]string{Running: "running", Draining: "draining", Finished: "finished", Failed: "failed"}

// String returns the status's name, as "running".
func (st Status) String() string {
	if int(st) < len(statusNames) {
		return statusNames[st]
	}
	return "Status(" + strconv.Itoa(int(st)) + ")"
}

// Status returns the status of the pipeline named name, and false when
// there is none in place.
func (s *Supervisor) Status(name string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runs[name]
	if r == nil {
		return 0, false
	}
	select {
	case <-r.finished:
		if r.err != nil {
			return Failed, true
		}
		return Finished, true
	default:
	}
	if s.stopped || r.handover {
		return Draining, true
	}
	return Running, true
}

// Execution returns the execution of the version in place of the pipeline
// named name (running or ended), and false when there is none: to read its
// stats or tap its stages.
func (s *Supervisor) Execution(name string) (*flowruntime.Execution, bool) {
	s.mu.Lock()
	r := s.runs[name]
	s.mu.Unlock()
	if r == nil {
		return nil, false
	}
	return r.exec, true
}
