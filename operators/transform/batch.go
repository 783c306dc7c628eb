package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var batchKind = &operators.Kind{
	Schema: func() planner.Schema {
		s := schema("batch", "Groups records into one record {records: [...], count: n} per size records or timeout.",
			planner.OptionSpec{Name: "size", Type: planner.Int, Default: int64(256),
				Doc: "The most records in one batch; a full batch is emitted at once."},
			planner.OptionSpec{Name: "timeout", Type: planner.Duration, Default: time.Second,
				Doc: "The longest the first record of a batch waits for it to fill; 0 waits until it is full or the stream ends."},
		)
		s.InFlight = func(o planner.Options) int { return int(o.Int("size")) }
		return checked(s, func(p *operators.Problems, o planner.Options) {
			p.Min(o, "size", 1)
			p.MinDuration(o, "timeout", 0, false)
		})
	}(),
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		b := &Batch{stage: st.Name, size: int(st.Options.Int("size")), timeout: st.Options.Duration("timeout"), clock: env.Clock}
		return &flowruntime.Node{Processor: b}, nil
	},
}

var _ flowruntime.Stateful = (*Batch)(nil)

// Batch collects records into batches. It is a Holder (records wait in it),
// Timed (a batch is emitted once its first record waited timeout) and
// Stateful (a restored batch goes on with the saved records).
type Batch struct {
	stage    string
	size     int
	timeout  time.Duration
	clock    flowruntime.Clock
	recs     []any
	first    flowruntime.Meta
	deadline time.Time
}

// Process adds rec to the batch and emits the batch when it is full.
func (b *Batch) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	if len(b.recs) == 0 {
		b.first = rec.Meta
		if b.timeout > 0 {
			b.deadline = b.clock.Now().Add(b.timeout)
		}
		b.recs = make([]any, 0, b.size)
	}
	b.recs = append(b.recs, rec.Fields)
	if len(b.recs) >= b.size {
		b.emit(emit)
	}
	return nil
}

func (b *Batch) emit(emit func(flowruntime.Record)) {
	if len(b.recs) == 0 {
		return
	}
	meta := b.first
	meta.Time = b.clock.Now()
	rec := flowruntime.Record{
		Fields: map[string]any{"records": b.recs, "count": int64(len(b.recs))},
		Meta:   meta,
	}
	b.recs = nil
	emit(rec)
}

// Held is the number of records in the unfinished batch.
func (b *Batch) Held() int { return len(b.recs) }

// Flush emits the unfinished batch.
func (b *Batch) Flush(emit func(flowruntime.Record)) error {
	b.emit(emit)
	return nil
}

// Deadline is when the unfinished batch times out.
func (b *Batch) Deadline() (time.Time, bool) {
	return b.deadline, len(b.recs) > 0 && b.timeout > 0
}

// Tick emits the unfinished batch once it has timed out.
func (b *Batch) Tick(now time.Time, emit func(flowruntime.Record)) error {
	if len(b.recs) > 0 && b.timeout > 0 && !now.Before(b.deadline) {
		b.emit(emit)
	}
	return nil
}

// batchState is a batch's saved state: the records of the unfinished
// batch, where its first record came from (the batch record carries it),
// and when it times out. A restored batch keeps its deadline, so one that
// passed while the pipeline was down emits the batch at the first tick
// after the restart.
type batchState struct {
	stateHeader
	Records  []json.RawMessage `json:"records"`
	First    *firstMeta        `json:"first,omitempty"`
	Deadline time.Time         `json:"deadline,omitzero"`
}

// firstMeta is the metadata of a batch's first record but its time, which
// the batch record does not keep.
type firstMeta struct {
	Source   string `json:"source,omitempty"`
	Position int64  `json:"position,omitempty"`
	File     string `json:"file,omitempty"`
}

// SaveState returns the records of the unfinished batch.
func (b *Batch) SaveState() ([]byte, error) {
	return saveState("batch", b.stage, func(c *valueCodec) (any, error) {
		recs, err := c.encodeAll(b.recs)
		if err != nil {
			return nil, fmt.Errorf("held record: %w", err)
		}
		st := batchState{stateHeader: header("batch"), Records: recs}
		if len(b.recs) > 0 {
			st.First = &firstMeta{Source: b.first.Source, Position: b.first.Position, File: b.first.File}
			if b.timeout > 0 {
				st.Deadline = b.deadline
			}
		}
		return st, nil
	})
}

// RestoreState replaces the unfinished batch with a saved one. A state
// saved without a timeout restored into a batch with one times out a
// timeout after the restart; a batch larger than size is emitted with the
// next record.
func (b *Batch) RestoreState(state []byte) error {
	var st batchState
	return restoreState("batch", b.stage, state, &st, func(c *valueCodec) error {
		recs, err := c.decodeRecords(st.Records)
		if err != nil {
			return err
		}
		if len(recs) > 0 && st.First == nil {
			return errors.New("held records without their first record's metadata")
		}
		b.recs, b.first, b.deadline = nil, flowruntime.Meta{}, time.Time{}
		if len(recs) == 0 {
			return nil
		}
		b.recs = make([]any, 0, max(b.size, len(recs)))
		b.recs = append(b.recs, recs...)
		b.first = flowruntime.Meta{Source: st.First.Source, Position: st.First.Position, File: st.First.File}
		if b.timeout > 0 {
			b.deadline = st.Deadline
			if b.deadline.IsZero() {
				b.deadline = b.clock.Now().Add(b.timeout)
			}
		}
		return nil
	})
}
