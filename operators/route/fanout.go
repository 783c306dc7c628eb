package route

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind { return []*operators.Kind{fanoutKind, mergeKind} }

var fanoutKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "fanout", Kind: "fanout",
		Doc: "Sends each record to every stage reading it (broadcast), or to one of them in turn or by key.",
		Options: []planner.OptionSpec{
			{Name: "mode", Type: planner.Enum, Enum: []string{"broadcast", "round_robin", "hash"}, Default: "broadcast",
				Doc: "broadcast sends every record to every reader, round_robin each record to the next reader, hash by the value of key."},
			{Name: "key", Type: planner.Expr,
				Doc: "For hash: the expression whose value picks the reader, so records with equal keys go to the same reader."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			hash := o.String("mode") == "hash"
			if hash && o.Expr("key") == nil {
				p.Add("mode", "a hash fanout needs a key, e.g. key = user_id")
			}
			if !hash && o.Expr("key") != nil {
				p.Add("key", "the key option is only used with mode = \"hash\": set the mode or remove the key")
			}
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		// An implicit fanout has no options: it broadcasts.
		f := &flowruntime.Fanout{Mode: flowruntime.Broadcast}
		switch st.Options.String("mode") {
		case "round_robin":
			f.Mode = flowruntime.RoundRobin
		case "hash":
			f.Mode = flowruntime.Hash
			f.Router = NewHash(st.Options.Expr("key"))
		}
		return &flowruntime.Node{Fanout: f}, nil
	},
}

// Hash routes a record by the FNV-1a hash of its key expression's value:
// equal keys always go to the same output, in every run and every process.
// It is safe for concurrent use.
type Hash struct {
	key  *expression.Program
	pool sync.Pool
}

type hashState struct {
	run expression.Runner
	enc codec.Encoder
	buf []byte
}

// NewHash returns a router by the value of key.
func NewHash(key *expression.Program) *Hash {
	return &Hash{key: key, pool: sync.Pool{New: func() any { return &hashState{} }}}
}

// Route returns the output of rec among n.
func (r *Hash) Route(rec flowruntime.Record, n int) (int, error) {
	if n <= 0 {
		return 0, errors.New("route: no outputs")
	}
	s := r.pool.Get().(*hashState)
	defer r.pool.Put(s)
	v, err := s.run.Run(r.key, rec.Fields)
	if err != nil {
		return 0, onerror.Permanent(err)
	}
	var sum uint64
	switch x := v.(type) {
	case string:
		sum = fnv1a(x)
	case int64:
		s.buf = strconv.AppendInt(s.buf[:0], x, 10)
		sum = fnv1a(s.buf)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			// 2.0 and 2 are the same key.
			s.buf = strconv.AppendInt(s.buf[:0], int64(x), 10)
		} else {
			s.buf = strconv.AppendFloat(s.buf[:0], x, 'g', -1, 64)
		}
		sum = fnv1a(s.buf)
	default:
		if s.buf, err = s.enc.Append(s.buf[:0], v); err != nil {
			return 0, onerror.Permanent(fmt.Errorf("key: %w", err))
		}
		sum = fnv1a(s.buf)
	}
	return int(sum % uint64(n)), nil
}

func fnv1a[T string | []byte](b T) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= 1099511628211
	}
	return h
}
