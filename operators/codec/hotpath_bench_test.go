package codec_test

import (
	"bytes"
	"testing"

	"github.com/flowrun/flowrun/operators/codec"
)

// The lines of the bench/workloads inputs: W2's JSONL and W4's CSV.
var (
	w2Line  = []byte(`{"id":1234565,"level":"ERROR","msg":"hello world"}`)
	w4Row   = []byte(`1234565,ERROR,hello world`)
	w2Field = map[string]any{"id": int64(1234565), "level": "ERROR", "msg": "HELLO WORLD"}
)

// BenchmarkDecodeW2Line decodes one W2 input line into a record.
func BenchmarkDecodeW2Line(b *testing.B) {
	var d codec.Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(w2Line)))
	for b.Loop() {
		m, err := d.DecodeObject(w2Line)
		if err != nil || len(m) != 3 {
			b.Fatalf("DecodeObject = %v, %v", m, err)
		}
	}
}

// BenchmarkEncodeW2Record encodes one W2 output record.
func BenchmarkEncodeW2Record(b *testing.B) {
	var e codec.Encoder
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = e.AppendObject(buf[:0], w2Field); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkSplitCSVW4Row splits one W4 input row into its cells.
func BenchmarkSplitCSVW4Row(b *testing.B) {
	var cells []string
	b.ReportAllocs()
	b.SetBytes(int64(len(w4Row)))
	for b.Loop() {
		var err error
		if cells, err = codec.SplitCSV(cells[:0], w4Row, ','); err != nil || len(cells) != 3 {
			b.Fatalf("SplitCSV = %q, %v", cells, err)
		}
	}
}

// BenchmarkLineReaderW2 splits W2's JSONL input into lines, as the file
// source does before decoding them.
func BenchmarkLineReaderW2(b *testing.B) {
	const lines = 10000
	input := bytes.Repeat(append(append([]byte(nil), w2Line...), '\n'), lines)
	r := bytes.NewReader(input)
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		r.Reset(input)
		lr := codec.NewLineReader(r, 0, 1<<20)
		n := 0
		for {
			if _, _, err := lr.Next(); err != nil {
				break
			}
			n++
		}
		if n != lines {
			b.Fatalf("read %d lines, want %d", n, lines)
		}
	}
}
