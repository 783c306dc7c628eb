package transform

import (
	"errors"
	"fmt"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind {
	return []*operators.Kind{
		filterKind, mapKind, takeKind, skipKind, dedupeKind,
		reduceKind, batchKind, windowKind, throttleKind,
	}
}

func schema(block, doc string, opts ...planner.OptionSpec) planner.Schema {
	return planner.Schema{Block: block, Kind: block, Doc: doc, Options: opts}
}

// mapKey turns an expression's value into a map key: scalars stand for
// themselves, lists and objects for their JSON text.
func mapKey(enc *codec.Encoder, buf *[]byte, v any) (any, error) {
	switch v.(type) {
	case nil, bool, int64, float64, string:
		return v, nil
	}
	b, err := enc.Append((*buf)[:0], v)
	*buf = b
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return string(b), nil
}

// positive returns the integer option name, checked to be at least 1.
func positive(o planner.Options, name string) (int, error) {
	n := o.Int(name)
	if n < 1 {
		return 0, fmt.Errorf("%s = %d: must be at least 1", name, n)
	}
	return int(n), nil
}

var errNegativeCount = errors.New("count must not be negative")

var errNegativeTimeout = errors.New("timeout must not be negative")
