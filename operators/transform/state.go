package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner/expression"
)

// The stateful processors (reduce, window, batch, dedupe, take, skip) save
// their state for runtime.Execution.Snapshot as the JSON of a small struct
// of their own that starts with a stateHeader: {"v":1,"kind":"reduce",...}.
// The values taken from records (keys, accumulators, held records) are
// embedded as JSON written by valueCodec.encode, which the codec's decoder reads
// back as the same Go values: an int64 stays an int64 and a float64 a
// float64, even a whole one. docs/state.md lists what each stage keeps.

// stateVersion is the version of the state every kind of this package
// saves; RestoreState refuses any other.
const stateVersion = 1

// stateHeader opens every saved state: its version and the kind of stage
// that saved it, so that a blob given to the wrong stage, or from another
// version, is a clear error rather than a wrong state.
type stateHeader struct {
	V    int    `json:"v"`
	Kind string `json:"kind"`
}

func header(kind string) stateHeader { return stateHeader{V: stateVersion, Kind: kind} }

// saveState encodes the state build returns (a kind's state struct, its
// values encoded with the codec build is given), naming the stage in any
// error.
func saveState(kind, stage string, build func(c *valueCodec) (any, error)) ([]byte, error) {
	var c valueCodec
	st, err := build(&c)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(st); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s %q: save state: %w", kind, stage, err)
}

// restoreState decodes b into st, a pointer to a kind's state struct (see
// decodeState), and then calls apply, which checks the decoded state and
// sets the stage from it (decoding its values with the codec it is
// given), naming the stage in any error. apply changes nothing when it
// fails.
func restoreState(kind, stage string, b []byte, st any, apply func(c *valueCodec) error) error {
	err := decodeState(kind, b, st)
	if err == nil {
		var c valueCodec
		err = apply(&c)
	}
	if err != nil {
		return fmt.Errorf("%s %q: restore state: %w", kind, stage, err)
	}
	return nil
}

// decodeState decodes b, a state that a stage of kind saved, into st, a
// pointer to that kind's state struct (which embeds stateHeader). It
// checks the header first (json.Unmarshal also refuses text after the
// state) and refuses fields st does not have.
func decodeState(kind string, b []byte, st any) error {
	var h stateHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("not a saved state: %w", err)
	}
	switch {
	case h.Kind == "" || h.V == 0:
		return errors.New(`not a saved state: no "v" and "kind"`)
	case h.Kind != kind:
		return fmt.Errorf("the state of a %s stage, not of a %s", h.Kind, kind)
	case h.V != stateVersion:
		return fmt.Errorf("state version %d, but this flowrun reads version %d only (reset the pipeline's state to start afresh)", h.V, stateVersion)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(st); err != nil {
		return fmt.Errorf("malformed %s state: %w", kind, err)
	}
	return nil
}

// keyedShape is what the state of a reduce or a window depends on of its
// options: whether it groups, and its every (empty for none). A state is
// restored only into a stage of the same shape.
type keyedShape struct {
	Grouped bool   `json:"grouped,omitempty"`
	Every   string `json:"every,omitempty"`
}

func shapeOf(group *expression.Program, every time.Duration) keyedShape {
	s := keyedShape{Grouped: group != nil}
	if every > 0 {
		s.Every = every.String()
	}
	return s
}

// fits checks that a state saved with shape s can be restored into a
// stage of shape now.
func (s keyedShape) fits(now keyedShape) error {
	const fix = "restore the option or reset the pipeline's state"
	switch {
	case s.Grouped && !now.Grouped:
		return errors.New("saved by a stage with group, but this one has none: " + fix)
	case !s.Grouped && now.Grouped:
		return errors.New("saved by a stage without group, but this one has one: " + fix)
	case s.Every != now.Every:
		show := func(every string) string {
			if every == "" {
				return "no every"
			}
			return "every = " + every
		}
		return fmt.Errorf("saved by a stage with %s, but this one has %s: %s", show(s.Every), show(now.Every), fix)
	}
	return nil
}

// valueCodec encodes and decodes the record values of a state.
type valueCodec struct {
	dec codec.Decoder
	enc codec.Encoder
}

// encode returns v as JSON that decode reads back as v: object keys
// sorted, so equal states encode to equal bytes, and whole floats with a
// fraction, so they stay floats. NaN and the infinities have no JSON and
// are errors.
func (c *valueCodec) encode(v any) (json.RawMessage, error) {
	c.enc.TypedFloats = true
	b, err := c.enc.Append(nil, v)
	if err != nil {
		return nil, fmt.Errorf("the value cannot be saved: %w", err)
	}
	return b, nil
}

// encodeAll encodes every value of vs.
func (c *valueCodec) encodeAll(vs []any) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(vs))
	for i, v := range vs {
		var err error
		if out[i], err = c.encode(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decode reads a value encode wrote.
func (c *valueCodec) decode(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, errors.New("a value is missing")
	}
	return c.dec.Decode(raw)
}

// groupKey reads the saved key of a group or window: with group, the key
// and the id the stage keeps it under (see mapKey); without, raw must be
// absent.
func (c *valueCodec) groupKey(raw json.RawMessage, grouped bool, enc *codec.Encoder, buf *[]byte) (key, id any, err error) {
	if !grouped {
		if len(raw) > 0 {
			return nil, nil, errors.New("a group key without group")
		}
		return nil, nil, nil
	}
	if key, err = c.decode(raw); err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	if id, err = mapKey(enc, buf, key); err != nil {
		return nil, nil, err
	}
	return key, id, nil
}

// decodeRecords reads the fields of held records: each must be an object.
func (c *valueCodec) decodeRecords(raws []json.RawMessage) ([]any, error) {
	out := make([]any, len(raws))
	for i, raw := range raws {
		v, err := c.decode(raw)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %d is %s, not an object", i, typeName(v))
		}
		out[i] = m
	}
	return out, nil
}
