package transform

import (
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

// checked returns s with check as its Check.
func checked(s planner.Schema, check func(p *operators.Problems, o planner.Options)) planner.Schema {
	s.Check = func(o planner.Options) error {
		var p operators.Problems
		check(&p, o)
		return p.Err()
	}
	return s
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
