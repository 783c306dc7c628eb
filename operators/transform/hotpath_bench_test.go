package transform_test

import (
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// BenchmarkReduceCountPerLevel is W4's reduce: one accumulator per level,
// acc + 1 per record. One op is one record.
func BenchmarkReduceCountPerLevel(b *testing.B) {
	p := processor(b, "reduce", M{"init": int64(0), "step": "acc + 1", "group": "level"}, nil)
	recs := []flowruntime.Record{
		{Fields: M{"id": "0", "level": "ERROR", "msg": "hello world"}},
		{Fields: M{"id": "1", "level": "INFO", "msg": "hello world"}},
	}
	emit := func(flowruntime.Record) { b.Fatal("reduce emitted before the end of stream") }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := p.Process(recs[i&1], emit); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	var total int64
	if err := p.(flowruntime.Holder).Flush(func(r flowruntime.Record) { total += r.Fields["value"].(int64) }); err != nil {
		b.Fatal(err)
	}
	if total != int64(i) {
		b.Fatalf("the groups count %d records, want %d", total, i)
	}
}

// BenchmarkBatch256 is W3's batch stage: records grouped by 256 into one
// {records, count} record. One op is one input record.
func BenchmarkBatch256(b *testing.B) {
	p := processor(b, "batch", M{"size": int64(256)}, nil)
	rec := flowruntime.Record{Fields: M{"id": int64(5), "level": "ERROR", "msg": "HELLO WORLD"}}
	batches := 0
	emit := func(flowruntime.Record) { batches++ }
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := p.Process(rec, emit); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if batches != n/256 {
		b.Fatalf("%d records made %d batches, want %d", n, batches, n/256)
	}
}
