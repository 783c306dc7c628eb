package codec_test

import (
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
