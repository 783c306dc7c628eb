package transform

import (
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
		b := &Batch{size: int(st.Options.Int("size")), timeout: st.Options.Duration("timeout"), clock: env.Clock}
		return &flowruntime.Node{Processor: b}, nil
	},
}

// Batch collects records into batches. It is a Holder (records wait in it)
// and Timed (a batch is emitted once its first record waited timeout).
type Batch struct {
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
