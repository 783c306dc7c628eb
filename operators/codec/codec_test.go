package codec_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"

	gojson "github.com/goccy/go-json"
	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/codec"
)

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]any
	}{
		{`{}`, map[string]any{}},
		{` {"id": 1, "n": -42, "f": 1.5, "e": 1e3, "big": 9223372036854775807, "bigger": 9223372036854775808} `,
			map[string]any{"id": int64(1), "n": int64(-42), "f": 1.5, "e": 1000.0,
				"big": int64(math.MaxInt64), "bigger": 9223372036854775808.0}},
		{`{"min": -9223372036854775808}`, map[string]any{"min": int64(math.MinInt64)}},
		{`{"s": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00", "plain": "héllo"}`,
			map[string]any{"s": "a\"b\\c/d\n\té😀", "plain": "héllo"}},
		{`{"l": [1, "x", null, true, false, [], {}], "o": {"k": {"k": 0}}}`,
			map[string]any{"l": []any{int64(1), "x", nil, true, false, []any{}, map[string]any{}},
				"o": map[string]any{"k": map[string]any{"k": int64(0)}}}},
		{`{"dup": 1, "dup": 2}`, map[string]any{"dup": int64(2)}},
		{"{\"bad\": \"\xff\"}", map[string]any{"bad": "\ufffd"}},
		{`{"lone": "\ud83d"}`, map[string]any{"lone": "\ufffd"}},
	}
	var d codec.Decoder
	for _, tt := range tests {
		got, err := d.DecodeObject([]byte(tt.in))
		if err != nil {
			t.Errorf("DecodeObject(%s): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DecodeObject(%s) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{``, "must be a JSON object"},
		{`[1]`, "must be a JSON object"},
		{`{"a": 1`, "end of input"},
		{`{"a" 1}`, "expected ':'"},
		{`{a: 1}`, "quoted key"},
		{`{"a": 01}`, "leading zero"},
		{`{"a": 1.}`, "no digits after"},
		{`{"a": tru}`, "invalid literal"},
		{`{"a": "x}`, "unterminated string"},
		{"{\"a\": \"\x01\"}", "control character"},
		{`{"a": "\q"}`, "invalid escape"},
		{`{"a": 1} x`, "after the object"},
		{`{"a": 1e999}`, "out of range"},
	}
	var d codec.Decoder
	for _, tt := range tests {
		_, err := d.DecodeObject([]byte(tt.in))
		var se *codec.SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("DecodeObject(%q) = %v, want a syntax error containing %q", tt.in, err, tt.msg)
		}
	}
}

// TestDecodeDoesNotAlias checks that decoded strings survive the reuse of
// the input buffer.
func TestDecodeDoesNotAlias(t *testing.T) {
	var d codec.Decoder
	buf := []byte(`{"key": "value", "esc": "a\nb"}`)
	got, err := d.DecodeObject(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	want := map[string]any{"key": "value", "esc": "a\nb"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after overwriting the input (-want +got):\n%s", diff)
	}
}

func TestEncodeSortedAndRoundTrip(t *testing.T) {
	in := map[string]any{
		"z": int64(1), "a": "x\"y\\\n\t\x01<>&\u2028é", "m": map[string]any{"b": 1.5, "a": nil},
		"l": []any{true, false, int64(-3), 0.000001, 1e21, 1e-7}, "f": 3.0,
	}
	var e codec.Encoder
	got, err := e.AppendObject(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"x\"y\\\n\t\u0001<>&\u2028é","f":3,"l":[true,false,-3,0.000001,1e+21,1e-7],"m":{"a":null,"b":1.5},"z":1}`
	if string(got) != want {
		t.Errorf("AppendObject =\n%s\nwant\n%s", got, want)
	}
	// The output is valid JSON meaning the same as the input.
	var back map[string]any
	if err := gojson.Unmarshal(got, &back); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	var d codec.Decoder
	again, err := d.DecodeObject(got)
	if err != nil {
		t.Fatal(err)
	}
	in["f"] = int64(3) // 3.0 is written as 3, which reads back as an integer
	if diff := cmp.Diff(in, again); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestEncodeTypedFloats(t *testing.T) {
	in := map[string]any{"f": 3.0, "i": int64(3), "l": []any{2.5, 1e21, 100.0}}
	e := codec.Encoder{TypedFloats: true}
	got, err := e.AppendObject(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"f":3.0,"i":3,"l":[2.5,1e+21,100.0]}`; string(got) != want {
		t.Errorf("AppendObject = %s, want %s", got, want)
	}
	var d codec.Decoder
	back, err := d.DecodeObject(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, back); diff != "" {
		t.Errorf("round trip keeps the types (-want +got):\n%s", diff)
	}
}

func TestAppendField(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]any
		want   string
	}{
		{"string as its bytes", map[string]any{"line": "a \"b\"", "x": int64(1)}, `a "b"`},
		{"other value as JSON", map[string]any{"line": []any{int64(1), "x"}}, `[1,"x"]`},
		{"null as JSON", map[string]any{"line": nil}, `null`},
		{"no field: the whole record", map[string]any{"b": int64(2), "a": "x"}, `{"a":"x","b":2}`},
	}
	var e codec.Encoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.AppendField([]byte(">"), tt.fields, "line")
			if err != nil {
				t.Fatal(err)
			}
			if want := ">" + tt.want; string(got) != want {
				t.Errorf("AppendField = %s, want %s", got, want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	var e codec.Encoder
	for _, v := range []any{math.NaN(), math.Inf(1), map[string]any{"x": []any{math.Inf(-1)}}} {
		if _, err := e.Append(nil, v); err == nil {
			t.Errorf("Append(%v) succeeded, want an error", v)
		}
	}
	// Values outside the record model still encode, through goccy/go-json.
	got, err := e.Append(nil, struct{ A int }{7})
	if err != nil || string(got) != `{"A":7}` {
		t.Errorf("Append(struct) = %s, %v", got, err)
	}
}

func TestLineReader(t *testing.T) {
	input := "one\r\ntwo\n\nthree"
	lr := codec.NewLineReader(strings.NewReader(input), 100, 16)
	type line struct {
		text string
		off  int64
	}
	var got []line
	for {
		b, off, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line{string(b), off})
	}
	b, off, err := lr.Rest()
	if err != nil {
		t.Fatalf("Rest: %v", err)
	}
	got = append(got, line{string(b), off})
	want := []line{{"one", 100}, {"two", 105}, {"", 109}, {"three", 110}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if lr.Offset() != 115 {
		t.Errorf("Offset = %d, want 115", lr.Offset())
	}
}

// TestLineReaderGrowth reads lines longer than the initial buffer and
// rejects one over the limit.
func TestLineReaderGrowth(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	input := long + "\n" + long + "y\nshort\n"
	lr := codec.NewLineReader(strings.NewReader(input), 0, len(long))
	b, _, err := lr.Next()
	if err != nil || len(b) != len(long) {
		t.Fatalf("first line: %d bytes, %v", len(b), err)
	}
	_, off, err := lr.Next()
	if !errors.Is(err, codec.ErrLineTooLong) || off != int64(len(long)+1) {
		t.Fatalf("second line: offset %d, err %v; want ErrLineTooLong at %d", off, err, len(long)+1)
	}
}

// TestLineReaderTooLong reads lines over the limit: each is returned cut to
// the limit with its real length, and reading goes on with the next line,
// however the input arrives.
func TestLineReaderTooLong(t *testing.T) {
	long := strings.Repeat("x", 100)
	input := "ok\n" + long + "\n" + "0123456789\r\n" + "0123456789A\r\n" + long + "\r\nnext\n" + long
	type line struct {
		text   string
		off    int64
		length int64 // of a line over the limit
	}
	want := []line{
		{"ok", 0, 0}, {"xxxxxxxxxx", 3, 100}, {"0123456789", 104, 0}, {"0123456789", 116, 11},
		{"xxxxxxxxxx", 129, 100}, {"next", 231, 0}, {"xxxxxxxxxx", 236, 100},
	}
	for name, r := range map[string]func() io.Reader{
		"at once":     func() io.Reader { return strings.NewReader(input) },
		"byte a read": func() io.Reader { return iotest.OneByteReader(strings.NewReader(input)) },
	} {
		t.Run(name, func(t *testing.T) {
			lr := codec.NewLineReader(r(), 0, 10)
			var got []line
			add := func(b []byte, off int64, err error) {
				l := line{text: string(b), off: off}
				var long *codec.LineTooLongError
				if errors.As(err, &long) {
					if !errors.Is(err, codec.ErrLineTooLong) || long.Max != 10 {
						t.Errorf("error %v (%+v) is not ErrLineTooLong with the limit", err, long)
					}
					l.length = long.Length
				} else if err != nil {
					t.Fatal(err)
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
			add(lr.Rest())
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(line{})); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if lr.Offset() != int64(len(input)) {
				t.Errorf("Offset = %d, want %d", lr.Offset(), len(input))
			}
			if _, _, err := lr.Rest(); !errors.Is(err, io.EOF) {
				t.Errorf("Rest at the end = %v, want io.EOF", err)
			}
		})
	}
}

// TestLineReaderTooLongFollow reads a line over the limit whose end is
// written later: Next waits for it and then returns the whole length.
func TestLineReaderTooLongFollow(t *testing.T) {
	var src bytes.Buffer
	src.WriteString("a\n" + strings.Repeat("x", 30))
	lr := codec.NewLineReader(&src, 0, 10)
	if b, _, err := lr.Next(); err != nil || string(b) != "a" {
		t.Fatalf("Next = %q, %v", b, err)
	}
	if _, _, err := lr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next in a long partial line = %v, want io.EOF", err)
	}
	src.WriteString(strings.Repeat("x", 30) + "\nb\n")
	b, off, err := lr.Next()
	var long *codec.LineTooLongError
	if !errors.As(err, &long) || long.Length != 60 || string(b) != "xxxxxxxxxx" || off != 2 {
		t.Fatalf("Next = %q at %d, %v; want the head of a 60-byte line at 2", b, off, err)
	}
	if b, _, err := lr.Next(); err != nil || string(b) != "b" {
		t.Fatalf("Next after the long line = %q, %v", b, err)
	}
}

// TestLineReaderFollow checks that a partial last line is kept back until
// the rest of it arrives.
func TestLineReaderFollow(t *testing.T) {
	var src bytes.Buffer
	src.WriteString("a\npar")
	lr := codec.NewLineReader(&src, 0, 100)
	if b, _, err := lr.Next(); err != nil || string(b) != "a" {
		t.Fatalf("Next = %q, %v", b, err)
	}
	if lr.Buffered() {
		t.Error("Buffered with only a partial line")
	}
	if _, _, err := lr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next on a partial line = %v, want io.EOF", err)
	}
	src.WriteString("tial\nb\n")
	b, off, err := lr.Next()
	if err != nil || string(b) != "partial" || off != 2 {
		t.Fatalf("Next = %q at %d, %v; want \"partial\" at 2", b, off, err)
	}
	if !lr.Buffered() {
		t.Error("not Buffered with a whole line waiting")
	}
}

func TestSplitCSV(t *testing.T) {
	tests := []struct {
		row  string
		want []string
		err  error
	}{
		{`a,b,c`, []string{"a", "b", "c"}, nil},
		{`a,,`, []string{"a", "", ""}, nil},
		{``, []string{""}, nil},
		{`"x, y","say ""hi""",z`, []string{"x, y", `say "hi"`, "z"}, nil},
		{"\"multi\nline\",2", []string{"multi\nline", "2"}, nil},
		{`"open,1`, nil, codec.ErrOpenQuote},
	}
	for _, tt := range tests {
		got, err := codec.SplitCSV(nil, []byte(tt.row), ',')
		if !errors.Is(err, tt.err) {
			t.Errorf("SplitCSV(%q) error = %v, want %v", tt.row, err, tt.err)
			continue
		}
		if tt.err == nil {
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SplitCSV(%q) (-want +got):\n%s", tt.row, diff)
			}
		}
	}
}

var benchLine = []byte(`{"id": 123456, "level": "ERROR", "msg": "disk full on /var/log", "latency": 12.5, "tags": ["a", "b"]}`)

func BenchmarkDecodeObject(b *testing.B) {
	var d codec.Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		if _, err := d.DecodeObject(benchLine); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGoccyUseNumber(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		dec := gojson.NewDecoder(bytes.NewReader(benchLine))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeObject(b *testing.B) {
	var d codec.Decoder
	rec, _ := d.DecodeObject(benchLine)
	var e codec.Encoder
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = e.AppendObject(buf[:0], rec); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// TestDecodeReusesShortValues checks that keys, short strings and small
// integers that repeat cost no allocation: only the record's map does.
func TestDecodeReusesShortValues(t *testing.T) {
	var d codec.Decoder
	line := []byte(`{"level": "INFO", "host": "web-1", "n": 7, "ok": true}`)
	if _, err := d.DecodeObject(line); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := d.DecodeObject(line); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("decoding a repeated record allocates %v times, want at most 2 (the map)", allocs)
	}
}
