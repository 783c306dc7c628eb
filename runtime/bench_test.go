package runtime_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// preSource emits the same prepared batch n/len(batch) times, so that the
// benchmark measures the runtime, not record building.
type preSource struct {
	n     int
	batch []flowruntime.Record
}

func (s *preSource) Run(ctx context.Context, out flowruntime.Emitter) error {
	for i := 0; i < s.n; i += len(s.batch) {
		if err := out.Emit(ctx, s.batch, nil); err != nil {
			return nil
		}
	}
	return nil
}

// genSource builds a fresh three-key record per record, like a generate
// source, in slices of per records.
type genSource struct{ n, per int }

func (s *genSource) Run(ctx context.Context, out flowruntime.Emitter) error {
	for i := 0; i < s.n; i += s.per {
		recs := make([]flowruntime.Record, s.per)
		for j := range recs {
			k := int64(i + j)
			recs[j] = flowruntime.Record{Fields: map[string]any{"id": k, "level": "INFO", "msg": "hello"}}
		}
		if err := out.Emit(ctx, recs, nil); err != nil {
			return nil
		}
	}
	return nil
}

type discard struct{}

func (discard) Write(context.Context, []flowruntime.Record) error { return nil }
func (discard) Close() error                                      { return nil }

// benchRun runs g to its end and also reports the process's CPU time per
// op (user + system), which a busy machine distorts less than wall time.
func benchRun(b *testing.B, g *flowruntime.Graph, opts flowruntime.Options) {
	before := cpuTime()
	ex, err := flowruntime.Start(context.Background(), g, opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := ex.Wait(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func preBatch() []flowruntime.Record {
	recs := make([]flowruntime.Record, 256)
	for i := range recs {
		recs[i] = flowruntime.Record{Fields: map[string]any{"id": int64(i)}}
	}
	return recs
}

// BenchmarkEdge measures one batched edge hop: source -> sink. One op is
// one record.
func BenchmarkEdge(b *testing.B) {
	b.ReportAllocs()
	g := chain(1024, &preSource{n: b.N, batch: preBatch()}, discard{})
	b.ResetTimer()
	benchRun(b, g, flowruntime.Options{})
}

// BenchmarkHops measures a source, four pass-through processors on their
// own goroutines and a sink: five hops. One op is one record.
func BenchmarkHops(b *testing.B) {
	b.ReportAllocs()
	pass := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error { emit(r); return nil })
	g := chain(1024, &preSource{n: b.N, batch: preBatch()}, discard{}, pass, pass, pass, pass)
	b.ResetTimer()
	benchRun(b, g, flowruntime.Options{NoFusion: true})
}

func filterMap() (flowruntime.Processor, flowruntime.Processor) {
	filter := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
		if r.Fields["id"].(int64)%3 != 0 {
			emit(r)
		}
		return nil
	})
	mapper := proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
		r.Fields["msg"] = "HELLO"
		emit(r)
		return nil
	})
	return filter, mapper
}

// BenchmarkPipeline is generate -> filter -> map -> discard with a fresh
// three-key record per record (fused: filter and map in one loop;
// unfused: one goroutine each), and with prepared records reused, which
// measures the runtime without the cost of building records. One op is one
// generated record.
func BenchmarkPipeline(b *testing.B) {
	b.Run("prebuilt", func(b *testing.B) {
		b.ReportAllocs()
		f, m := filterMap()
		g := chain(1024, &preSource{n: b.N, batch: preBatch()}, discard{}, f, m)
		b.ResetTimer()
		benchRun(b, g, flowruntime.Options{})
	})
	for _, fused := range []bool{true, false} {
		name := "fused"
		if !fused {
			name = "unfused"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			f, m := filterMap()
			g := chain(1024, &genSource{n: b.N, per: 256}, discard{}, f, m)
			b.ResetTimer()
			benchRun(b, g, flowruntime.Options{NoFusion: !fused})
		})
	}
}

// BenchmarkHandWritten is the reference for BenchmarkPipeline/fused: the
// same records, filter and map written by hand with a channel of batches
// between two goroutines and no runtime at all.
func BenchmarkHandWritten(b *testing.B) {
	b.ReportAllocs()
	before := cpuTime()
	ch := make(chan []flowruntime.Record, 4)
	done := make(chan int)
	go func() {
		n := 0
		for batch := range ch {
			for _, r := range batch {
				if r.Fields["id"].(int64)%3 != 0 {
					r.Fields["msg"] = "HELLO"
					n++
				}
			}
		}
		done <- n
	}()
	for i := 0; i < b.N; i += 256 {
		recs := make([]flowruntime.Record, 256)
		for j := range recs {
			recs[j] = flowruntime.Record{Fields: map[string]any{"id": int64(i + j), "level": "INFO", "msg": "hello"}}
		}
		ch <- recs
	}
	close(ch)
	<-done
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}
