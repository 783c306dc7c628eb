package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/state"
)

// DefaultCheckpointInterval is how often a pipeline's state is saved when
// Config.CheckpointInterval is zero.
const DefaultCheckpointInterval = time.Second

// keeper keeps one pipeline's state in the state dir: a fresh run is
// restored from the last snapshot, a snapshot is saved every interval while
// it runs, and a last one when it ends after end of stream or a drain.
type keeper struct {
	store    *state.Pipeline
	dir      string // the state dir's path, for ResetHint
	interval time.Duration
	log      hclog.Logger

	mu  sync.Mutex // serializes saves; guards seq and last
	seq uint64
	// last is what the last save or restore held: a snapshot equal to it
	// is not saved again.
	last map[string][]byte
}

// keeper returns the keeper of the pipeline named name, or nil without a
// state dir. Versions of one pipeline share a keeper.
func (s *Supervisor) keeper(name string, log hclog.Logger) *keeper {
	if s.cfg.State == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keepers[name]; k != nil {
		return k
	}
	interval := s.cfg.CheckpointInterval
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	k := &keeper{store: s.cfg.State.Pipeline(name), dir: s.cfg.State.Path(), interval: interval, log: log}
	s.keepers[name] = k
	return k
}

// restore loads the pipeline's last snapshot and returns the state of each
// stage in it (nil when there is none yet).
func (k *keeper) restore(g *flowruntime.Graph) (map[string][]byte, error) {
	snap, err := k.store.Load()
	if err != nil {
		if fe := (*state.FileError)(nil); errors.As(err, &fe) {
			err = fmt.Errorf("%w (%s)", err, ResetHint(k.dir, k.store.Name()))
		}
		return nil, err
	}
	k.mu.Lock()
	k.seq, k.last = snap.Sequence, snap.Stages
	k.mu.Unlock()
	if snap.Sequence == 0 {
		return nil, nil
	}
	k.log.Info("state restored", "file", k.store.File(), "sequence", snap.Sequence,
		"saved", snap.Time.Format(time.RFC3339Nano), "stages", len(snap.Stages))
	return snap.Stages, nil
}

// applyStates gives every stage of g named in states its state before the
// run starts: a source resumes from its checkpoint (Resumer), a stateful
// processor or sink restores what it saved (Stateful). States of stages g
// does not have, or that keep none now, are logged and ignored.
//
// A sink cuts its output back to the snapshot only when every source can
// read again what came after it (every source is a Resumer): otherwise
// what it wrote since would be lost, so it keeps it (outputKeeper) and
// appends.
func applyStates(g *flowruntime.Graph, states map[string][]byte, log hclog.Logger) error {
	replayable := true
	for _, n := range g.Nodes {
		if _, ok := n.Source.(flowruntime.Resumer); n.Source != nil && !ok {
			replayable = false
		}
	}
	used := map[string]bool{}
	for _, n := range g.Nodes {
		blob, ok := states[n.Name]
		if !ok {
			continue
		}
		used[n.Name] = true
		if n.Source != nil {
			if err := resumeSource(n, blob, log); err != nil {
				return err
			}
			continue
		}
		if n.Sink != nil && !replayable {
			if k, ok := n.Sink.(outputKeeper); ok {
				k.KeepOutput()
			}
			log.Info("a source cannot read again what came after the snapshot: the sink keeps what it wrote since (exactly once only with file, generate and postgres sources)", "stage", n.Name)
			continue
		}
		st := n.Stateful()
		if st == nil {
			log.Warn("saved state of a stage that keeps none now: ignored", "stage", n.Name)
			continue
		}
		if err := st.RestoreState(blob); err != nil {
			return fmt.Errorf("stage %q: restore its state: %w", n.Name, err)
		}
	}
	for name := range states {
		if !used[name] {
			log.Warn("saved state of a stage the pipeline no longer has: ignored", "stage", name)
		}
	}
	return nil
}

// outputKeeper is a sink that can keep what an earlier run wrote, appending
// after it, instead of restoring its saved state.
type outputKeeper interface {
	KeepOutput()
}

// resumeSource makes the source n resume from the checkpoint blob (JSON).
func resumeSource(n *flowruntime.Node, blob []byte, log hclog.Logger) error {
	rs, ok := n.Source.(flowruntime.Resumer)
	if !ok {
		log.Warn("source cannot resume: it starts afresh", "stage", n.Name)
		return nil
	}
	var cp any
	if err := json.Unmarshal(blob, &cp); err != nil {
		return fmt.Errorf("stage %q: checkpoint %s: %w", n.Name, blob, err)
	}
	if err := rs.Resume(cp); err != nil {
		return err
	}
	log.Debug("source resumes", "stage", n.Name, "checkpoint", cp)
	return nil
}

// ResetHint tells how to forget the unusable state of the pipeline named
// pipeline in the state dir dir, as a shell command line: "to start afresh:
// flowrun state reset DIR --pipeline NAME".
func ResetHint(dir, pipeline string) string {
	if strings.HasPrefix(dir, "-") {
		dir = "./" + dir // not a flag
	}
	return "to start afresh: flowrun state reset " + shellWord(dir) + " --pipeline " + shellWord(pipeline)
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./,:=@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// run saves a snapshot of exec every interval until exec ends, then closes
// done. A pipeline
// that cannot be snapshotted is told once; a failed snapshot is logged and
// tried again at the next interval.
func (k *keeper) run(exec *flowruntime.Execution, done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-exec.Done()
		cancel()
	}()
	tick := time.NewTicker(k.interval)
	defer tick.Stop()
	// The first snapshot is taken at once, while the sources are held
	// (runtime.Options.HoldSources), and saved before they go: a run killed
	// at any moment then leaves one, so the next run knows it continues
	// it (see applyStates).
	defer exec.LetSourcesGo()
	for first := true; ; first = false {
		if !first {
			exec.LetSourcesGo()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		snap, err := exec.Snapshot(ctx)
		switch {
		case errors.Is(err, flowruntime.ErrNoSnapshot):
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				k.log.Warn("state is not kept", "error", err)
			}
			return
		case err != nil:
			if ctx.Err() == nil {
				k.log.Warn("snapshot failed: the state is saved at the next interval", "error", err)
			}
			continue
		}
		if err := k.save(snap); err != nil {
			k.log.Error("state not saved", "error", err)
		}
	}
}

// final saves the last snapshot of exec, which ended after end of stream or
// a drain: a later run resumes after everything it finished.
func (k *keeper) final(exec *flowruntime.Execution) error {
	snap, err := exec.Snapshot(context.Background())
	if err != nil {
		return err
	}
	return k.save(snap)
}

func (k *keeper) save(snap *flowruntime.Snapshot) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seq > 0 && maps.EqualFunc(k.last, snap.States, bytes.Equal) {
		return nil // nothing moved since
	}
	k.seq++
	if err := k.store.Save(state.Snapshot{Sequence: k.seq, Time: time.Now().UTC(), Stages: snap.States}); err != nil {
		return err
	}
	k.last = snap.States
	k.log.Debug("state saved", "sequence", k.seq, "stages", len(snap.States))
	return nil
}
