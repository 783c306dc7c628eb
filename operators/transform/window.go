package transform

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var windowKind = &operators.Kind{
	Schema: func() planner.Schema {
		s := schema("window", "Groups records into tumbling windows by count or by time, optionally per key, emitting {key, count, start, end, records} per window.",
			planner.OptionSpec{Name: "size", Type: planner.Int,
				Doc: "Count windows: a window closes after size records (set size or every)."},
			planner.OptionSpec{Name: "every", Type: planner.Duration,
				Doc: "Time windows: a window covers one interval of this length, aligned to multiples of it, and closes when the clock passes its end (set size or every)."},
			planner.OptionSpec{Name: "group", Type: planner.Expr,
				Doc: "A key expression: one window per key at a time; the key is emitted as key."},
			planner.OptionSpec{Name: "max_records", Type: planner.Int, Default: int64(10000),
				Doc: "The most records held across open windows; reaching it emits the window being filled early."},
		)
		s.InFlight = func(o planner.Options) int {
			if n := o.Int("size"); n > 0 && o.Expr("group") == nil {
				return int(min(n, o.Int("max_records")))
			}
			return int(o.Int("max_records"))
		}
		return checked(s, func(p *operators.Problems, o planner.Options) {
			size, every := o.Int("size"), o.Duration("every")
			switch {
			case size < 0:
				p.Add("size", "the size must be more than 0, not %d", size)
			case every < 0:
				p.Add("every", "the every option must be more than 0, not %s", every)
			case size > 0 && every > 0:
				p.Add("every", "a window closes by count (size) or by time (every), not both: remove one")
			case size == 0 && every == 0:
				p.Add("", "a window needs size (a count of records) or every (a duration)")
			}
			p.Min(o, "max_records", 1)
		})
	}(),
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		w := &Window{
			stage:   st.Name,
			size:    int(st.Options.Int("size")),
			every:   st.Options.Duration("every"),
			group:   st.Options.Expr("group"),
			clock:   env.Clock,
			max:     int(st.Options.Int("max_records")),
			windows: map[any]*window{},
		}
		return &flowruntime.Node{Processor: w}, nil
	},
}

var _ flowruntime.Stateful = (*Window)(nil)

// Window collects records into tumbling windows, by count (size) or by
// time (every), one window per group key at a time. Time windows are
// aligned to multiples of every on the runtime's clock and closed by Tick.
// It is Stateful: a restored window goes on with the saved open windows.
type Window struct {
	stage   string
	size    int
	every   time.Duration
	group   *expression.Program
	max     int
	clock   flowruntime.Clock
	windows map[any]*window
	// open lists the open windows in the order they opened, so the first
	// one is the first to end.
	open []*window
	held int
	run  expression.Runner
	enc  codec.Encoder
	buf  []byte
}

type window struct {
	id, key    any
	start, end time.Time
	recs       []any
	closed     bool
}

// Process adds rec to its window, emitting windows that close.
func (w *Window) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	var key, id any
	if w.group != nil {
		var err error
		if key, err = w.run.Run(w.group, rec.Fields); err != nil {
			return onerror.Permanent(err)
		}
		if id, err = mapKey(&w.enc, &w.buf, key); err != nil {
			return onerror.Permanent(err)
		}
	}
	now := w.clock.Now()
	win := w.windows[id]
	if win != nil && w.every > 0 && !now.Before(win.end) {
		w.close(win, emit)
		win = nil
	}
	if win == nil {
		win = &window{id: id, key: key, start: now}
		if w.every > 0 {
			win.start = now.Truncate(w.every)
			win.end = win.start.Add(w.every)
		}
		w.windows[id] = win
		w.open = append(w.open, win)
	}
	win.recs = append(win.recs, rec.Fields)
	w.held++
	if w.size > 0 {
		win.end = now
	}
	if (w.size > 0 && len(win.recs) >= w.size) || w.held >= w.max {
		w.close(win, emit)
	}
	return nil
}

func (w *Window) close(win *window, emit func(flowruntime.Record)) {
	win.closed = true
	delete(w.windows, win.id)
	w.held -= len(win.recs)
	fields := map[string]any{
		"count":   int64(len(win.recs)),
		"start":   win.start.UTC().Format(time.RFC3339Nano),
		"end":     win.end.UTC().Format(time.RFC3339Nano),
		"records": win.recs,
	}
	if w.group != nil {
		fields["key"] = win.key
	}
	win.recs = nil
	for len(w.open) > 0 && w.open[0].closed {
		w.open[0] = nil
		w.open = w.open[1:]
	}
	if len(w.open) > 2*len(w.windows)+16 {
		// Closed windows stuck behind an open one: drop them.
		kept := w.open[:0]
		for _, o := range w.open {
			if !o.closed {
				kept = append(kept, o)
			}
		}
		clear(w.open[len(kept):])
		w.open = kept
	}
	emit(flowruntime.Record{Fields: fields, Meta: flowruntime.Meta{Time: w.clock.Now()}})
}

// Held is the number of records in open windows.
func (w *Window) Held() int { return w.held }

// Flush emits every open window, oldest first.
func (w *Window) Flush(emit func(flowruntime.Record)) error {
	for len(w.open) > 0 {
		if win := w.open[0]; !win.closed {
			w.close(win, emit)
		} else {
			w.open = w.open[1:]
		}
	}
	return nil
}

// Deadline is when the oldest open time window ends.
func (w *Window) Deadline() (time.Time, bool) {
	if w.every <= 0 {
		return time.Time{}, false
	}
	for _, win := range w.open {
		if !win.closed {
			return win.end, true
		}
	}
	return time.Time{}, false
}

// Tick emits the time windows that ended by now.
func (w *Window) Tick(now time.Time, emit func(flowruntime.Record)) error {
	if w.every <= 0 {
		return nil
	}
	for len(w.open) > 0 {
		win := w.open[0]
		if !win.closed && now.Before(win.end) {
			break
		}
		if !win.closed {
			w.close(win, emit)
		} else {
			w.open = w.open[1:]
		}
	}
	return nil
}

// windowState is a window's saved state: its open windows, in the order
// they opened, each with its bounds and records. A restored time window
// keeps its bounds, so one whose end passed while the pipeline was down is
// emitted, as it was, at the first tick after the restart.
type windowState struct {
	stateHeader
	keyedShape
	Windows []openWindow `json:"windows"`
}

// openWindow is one open window; Key is absent without group. A count
// window's end is when its last record came.
type openWindow struct {
	Key     json.RawMessage   `json:"key,omitempty"`
	Start   time.Time         `json:"start"`
	End     time.Time         `json:"end"`
	Records []json.RawMessage `json:"records"`
}

// SaveState returns the open windows and their records.
func (w *Window) SaveState() ([]byte, error) {
	return saveState("window", w.stage, func(c *valueCodec) (any, error) {
		st := windowState{stateHeader: header("window"), keyedShape: shapeOf(w.group, w.every), Windows: []openWindow{}}
		for _, win := range w.open {
			if win.closed {
				continue
			}
			o := openWindow{Start: win.start, End: win.end}
			var err error
			if w.group != nil {
				if o.Key, err = c.encode(win.key); err != nil {
					return nil, fmt.Errorf("group key: %w", err)
				}
			}
			if o.Records, err = c.encodeAll(win.recs); err != nil {
				return nil, fmt.Errorf("held record: %w", err)
			}
			st.Windows = append(st.Windows, o)
		}
		return st, nil
	})
}

// RestoreState replaces the open windows with saved ones. The state must
// have been saved by a window with the same group (present or not) and
// every (or none, for count windows); the records held may exceed
// max_records, and the next record then emits its window.
func (w *Window) RestoreState(b []byte) error {
	var st windowState
	return restoreState("window", w.stage, b, &st, func(c *valueCodec) error {
		if err := st.fits(shapeOf(w.group, w.every)); err != nil {
			return err
		}
		if !st.Grouped && len(st.Windows) > 1 {
			return fmt.Errorf("%d open windows without group", len(st.Windows))
		}
		windows := make(map[any]*window, len(st.Windows))
		open := make([]*window, 0, len(st.Windows))
		held := 0
		for i, o := range st.Windows {
			key, id, err := c.groupKey(o.Key, st.Grouped, &w.enc, &w.buf)
			if err != nil {
				return fmt.Errorf("window %d: %w", i, err)
			}
			switch {
			case windows[id] != nil:
				return fmt.Errorf("window %d: key %s saved twice", i, o.Key)
			case w.every > 0 && !o.End.After(o.Start):
				return fmt.Errorf("window %d: end %s is not after its start %s", i, o.End.Format(time.RFC3339Nano), o.Start.Format(time.RFC3339Nano))
			case len(o.Records) == 0:
				return fmt.Errorf("window %d: an open window without records", i)
			}
			recs, err := c.decodeRecords(o.Records)
			if err != nil {
				return fmt.Errorf("window %d: %w", i, err)
			}
			win := &window{id: id, key: key, start: o.Start, end: o.End, recs: recs}
			held += len(recs)
			windows[id] = win
			open = append(open, win)
		}
		w.windows, w.open, w.held = windows, open, held
		return nil
	})
}
