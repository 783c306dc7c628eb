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

var dedupeKind = &operators.Kind{
	Schema: checked(schema("dedupe", "Drops a record whose key was seen among the most recent keys.",
		planner.OptionSpec{Name: "key", Type: planner.Expr, Required: true,
			Doc: "The expression whose value identifies duplicates, e.g. id."},
		planner.OptionSpec{Name: "capacity", Type: planner.Int, Default: int64(100000),
			Doc: "How many keys are remembered; the key first seen longest ago is forgotten first, so memory stays bounded."},
		planner.OptionSpec{Name: "ttl", Type: planner.Duration, Default: time.Duration(0),
			Doc: "How long a key is remembered after it was first seen; 0 remembers it until capacity pushes it out."},
	), func(p *operators.Problems, o planner.Options) {
		p.Min(o, "capacity", 1)
		p.MinDuration(o, "ttl", 0, false)
	}),
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		d := &Dedupe{
			stage:    st.Name,
			key:      st.Options.Expr("key"),
			capacity: int(st.Options.Int("capacity")),
			ttl:      st.Options.Duration("ttl"),
			clock:    env.Clock,
			seen:     map[any]struct{}{},
		}
		return &flowruntime.Node{Processor: d}, nil
	},
}

var _ flowruntime.Stateful = (*Dedupe)(nil)

// Dedupe drops records whose key it remembers. It remembers at most
// capacity keys, and each for at most ttl when ttl is set: the key first
// seen longest ago is forgotten first. It is Stateful: a restored dedupe
// remembers the saved keys.
type Dedupe struct {
	stage    string
	key      *expression.Program
	capacity int
	ttl      time.Duration
	clock    flowruntime.Clock
	seen     map[any]struct{}
	// queue holds the remembered keys from queue[head], oldest first.
	queue []seenKey
	head  int
	run   expression.Runner
	enc   codec.Encoder
	buf   []byte
}

type seenKey struct {
	key any
	at  time.Time
}

// Process emits rec unless its key is remembered.
func (d *Dedupe) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	v, err := d.run.Run(d.key, rec.Fields)
	if err != nil {
		return onerror.Permanent(err)
	}
	k, err := mapKey(&d.enc, &d.buf, v)
	if err != nil {
		return onerror.Permanent(err)
	}
	var now time.Time
	if d.ttl > 0 {
		now = d.clock.Now()
		for d.head < len(d.queue) && now.Sub(d.queue[d.head].at) >= d.ttl {
			d.forgetOldest()
		}
	}
	if _, dup := d.seen[k]; dup {
		return nil
	}
	if len(d.queue)-d.head >= d.capacity {
		d.forgetOldest()
	}
	if d.head > 0 && d.head >= len(d.queue)/2 {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue, d.head = d.queue[:n], 0
	}
	d.queue = append(d.queue, seenKey{key: k, at: now})
	d.seen[k] = struct{}{}
	emit(rec)
	return nil
}

func (d *Dedupe) forgetOldest() {
	delete(d.seen, d.queue[d.head].key)
	d.queue[d.head] = seenKey{}
	d.head++
}

// dedupeState is a dedupe's saved state: the keys it remembers, oldest
// first, and, with ttl, when each was first seen. The keys are as the
// dedupe compares them: a list or object key as its JSON text.
type dedupeState struct {
	stateHeader
	Keys []json.RawMessage `json:"keys"`
	At   []time.Time       `json:"at,omitempty"`
}

// SaveState returns the remembered keys, oldest first.
func (d *Dedupe) SaveState() ([]byte, error) {
	return saveState("dedupe", d.stage, func(c *valueCodec) (any, error) {
		live := d.queue[d.head:]
		st := dedupeState{stateHeader: header("dedupe"), Keys: make([]json.RawMessage, len(live))}
		if d.ttl > 0 {
			st.At = make([]time.Time, len(live))
		}
		for i, s := range live {
			var err error
			if st.Keys[i], err = c.encode(s.key); err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			if d.ttl > 0 {
				st.At[i] = s.at
			}
		}
		return st, nil
	})
}

// RestoreState replaces the remembered keys with saved ones. With fewer
// capacity than keys saved, the oldest are forgotten. A key whose ttl ran
// out while the pipeline was down is forgotten at the next record, as if
// it had run; keys saved without ttl, restored into a dedupe with one, are
// remembered for ttl from the restart.
func (d *Dedupe) RestoreState(b []byte) error {
	var st dedupeState
	return restoreState("dedupe", d.stage, b, &st, func(c *valueCodec) error {
		if st.At != nil && len(st.At) != len(st.Keys) {
			return fmt.Errorf("%d keys but %d times they were seen at", len(st.Keys), len(st.At))
		}
		var now time.Time
		if d.ttl > 0 && st.At == nil {
			now = d.clock.Now()
		}
		first := max(len(st.Keys)-d.capacity, 0)
		seen := make(map[any]struct{}, len(st.Keys)-first)
		queue := make([]seenKey, 0, len(st.Keys)-first)
		for i := first; i < len(st.Keys); i++ {
			k, err := c.decode(st.Keys[i])
			if err != nil {
				return fmt.Errorf("key %d: %w", i, err)
			}
			switch k.(type) {
			case nil, bool, int64, float64, string:
			default:
				return fmt.Errorf("key %d is %s, not a key as dedupe keeps it", i, typeName(k))
			}
			if _, dup := seen[k]; dup {
				return fmt.Errorf("key %d: %s saved twice", i, st.Keys[i])
			}
			s := seenKey{key: k, at: now}
			if d.ttl > 0 && st.At != nil {
				s.at = st.At[i]
			}
			seen[k] = struct{}{}
			queue = append(queue, s)
		}
		d.seen, d.queue, d.head = seen, queue, 0
		return nil
	})
}
