package codec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"

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

// FuzzLineReader checks the line reader against splitting the whole input
// at its newlines: every line, at its offset, without its line ending, and
// each line over the limit as its head and its real length, whether the
// input arrives at once or a byte a read.
func FuzzLineReader(f *testing.F) {
	for _, seed := range []struct {
		in  string
		max uint8
	}{
		{"one\r\ntwo\n\nthree", 16}, {"0123456789\r\n0123456789A\r\n", 10},
		{"xxxxxxxxxxxxxxxxxxxx\nok\n", 4}, {"\r\r\r\r\r\r\n\r", 2}, {"long unterminated last line\r", 3},
		{"", 1}, {"\n\n", 1},
	} {
		f.Add([]byte(seed.in), seed.max)
	}
	type line struct {
		text   string
		off    int64
		length int64 // of a line over the limit; 0 for the others
	}
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		limit := int(max%64) + 1
		var want []line
		var off int64
		for rest := data; len(rest) > 0; {
			text := rest
			next := len(rest)
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				text, next = rest[:i], i+1
			}
			text = bytes.TrimSuffix(text, []byte{'\r'})
			l := line{text: string(text), off: off}
			if len(text) > limit {
				l.text, l.length = string(text[:limit]), int64(len(text))
			}
			want = append(want, l)
			off += int64(next)
			rest = rest[next:]
		}
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			lr := codec.NewLineReader(r, 0, limit)
			var got []line
			add := func(b []byte, off int64, err error) {
				l := line{text: string(b), off: off}
				var long *codec.LineTooLongError
				if errors.As(err, &long) {
					l.length = long.Length
				} else if err != nil {
					t.Fatalf("%q: %v", data, err)
				}
				got = append(got, l)
			}
			for {
				b, off, err := lr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				add(b, off, err)
			}
			if b, off, err := lr.Rest(); !errors.Is(err, io.EOF) {
				add(b, off, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%q with limit %d: lines %+v, want %+v", data, limit, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%q with limit %d: line %d = %+v, want %+v", data, limit, i, got[i], want[i])
				}
			}
			if lr.Offset() != int64(len(data)) {
				t.Fatalf("%q: Offset = %d, want %d", data, lr.Offset(), len(data))
			}
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
