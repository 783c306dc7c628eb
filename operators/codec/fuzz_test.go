package codec_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/codec"
)

// FuzzDecodeObject checks the decoder against encoding/json: it accepts
// exactly the objects encoding/json accepts and yields the same values
// (integers as int64), and what it decodes encodes to text that decodes to
// the same again.
func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a": 1, "b": -2.5e3, "c": "x\"\u00e9\ud83d\ude00", "d": [true, null, {}]}`,
		`{"n": 9223372036854775807}`, `{"n": -9223372036854775809}`, `{"s": "\ud800"}`,
		"{\"bad\": \"\xff\"}", `{"a":1,}`, `{"a" 1}`, `[1]`, ` {"nested": {"x": [1, [2, [3]]]}} `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d codec.Decoder
		got, err := d.DecodeObject(data)
		var want map[string]any
		stdErr := json.Unmarshal(data, &want)
		if stdErr != nil || want == nil {
			if err == nil && stdErr != nil {
				t.Fatalf("accepted %q, which encoding/json rejects: %v", data, stdErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("rejected %q, which encoding/json accepts: %v", data, err)
		}
		if diff := cmp.Diff(want, asFloats(got)); diff != "" {
			t.Fatalf("%q decodes differently from encoding/json (-want +got):\n%s", data, diff)
		}
		var e codec.Encoder
		text, err := e.AppendObject(nil, got)
		if err != nil {
			t.Fatalf("encode %v: %v", got, err)
		}
		again, err := d.DecodeObject(text)
		if err != nil {
			t.Fatalf("re-decode %s: %v", text, err)
		}
		if diff := cmp.Diff(asFloats(got), asFloats(again)); diff != "" {
			t.Fatalf("round trip through %s (-first +second):\n%s", text, diff)
		}
	})
}

// asFloats turns integers into float64, as encoding/json decodes them.
func asFloats(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = asFloats(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = asFloats(e)
		}
		return l
	}
	return v
}
