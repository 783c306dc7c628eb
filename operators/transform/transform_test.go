package transform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

type M = map[string]any

// processor builds a processor stage of kind with opts.
func processor(t testing.TB, kind string, opts M, clock flowruntime.Clock) flowruntime.Processor {
	t.Helper()
	n := optest.Build(t, optest.Stage(t, kind, kind, kind, opts), optest.Env(clock))
	if n.Processor == nil {
		t.Fatalf("%s built no processor: %+v", kind, n)
	}
	return n.Processor
}

// buildErr builds a stage that must fail and returns the error text.
func buildErr(t *testing.T, kind string, opts M) string {
	t.Helper()
	_, err := all.Registry().Build(optest.Stage(t, kind, kind, kind, opts), optest.Env(nil))
	if err == nil {
		t.Fatalf("%s %v built, want an error", kind, opts)
	}
	return err.Error()
}

func TestFilter(t *testing.T) {
	p := processor(t, "filter", M{"where": `level == "ERROR" && len(msg) > 0`}, nil)
	got := optest.Process(t, p, optest.Records(
		M{"level": "ERROR", "msg": "disk full"},
		M{"level": "INFO", "msg": "ok"},
		M{"level": "ERROR", "msg": ""},
		M{"msg": "no level"},
		M{"level": "ERROR", "msg": "again", "n": int64(2)},
	)...)
	want := []M{{"level": "ERROR", "msg": "disk full"}, {"level": "ERROR", "msg": "again", "n": int64(2)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFilterRuntimeError(t *testing.T) {
	p := processor(t, "filter", M{"where": `n % 3 == 0`}, nil)
	if got := optest.Process(t, p, optest.Records(M{"n": int64(9)}, M{"n": int64(4)})...); len(got) != 1 {
		t.Errorf("integers from records: got %v, want only n = 9", got)
	}
	err := p.Process(optest.Records(M{"n": "text"})[0], func(flowruntime.Record) {})
	if err == nil || !strings.Contains(err.Error(), "test.flow") || !onerror.IsPermanent(err) {
		t.Errorf("Process of a string modulo = %v, want a permanent error placed in the file", err)
	}
}

func TestMap(t *testing.T) {
	tests := []struct {
		name string
		opts M
		in   M
		want M
	}{
		{"set sees the input", M{"set": [][2]string{{"msg", "upper(msg)"}, {"copy", "msg"}, {"n", "n + 1"}}},
			M{"msg": "disk", "n": int64(1)}, M{"msg": "DISK", "copy": "disk", "n": int64(2)}},
		{"to replaces", M{"to": `{id: id, twice: id * 2}`},
			M{"id": int64(21), "other": true}, M{"id": int64(21), "twice": int64(42)}},
		{"to then set then drop", M{"to": `{a: a, b: b}`, "set": [][2]string{{"c", "a + b"}}, "drop": []string{"b", "absent"}},
			M{"a": int64(1), "b": int64(2), "z": 0}, M{"a": int64(1), "c": int64(3)}},
		{"drop only", M{"drop": []string{"secret"}}, M{"secret": "x", "keep": "y"}, M{"keep": "y"}},
		{"set on an empty record", M{"set": [][2]string{{"x", "1"}}}, nil, M{"x": int64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := optest.Process(t, processor(t, "map", tt.opts, nil), optest.Records(tt.in)...)
			if diff := cmp.Diff([]M{tt.want}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if msg := buildErr(t, "map", M{}); !strings.Contains(msg, "at least one of to, set and drop") {
		t.Errorf("map without options: %s", msg)
	}
	p := processor(t, "map", M{"to": `"not an object"`}, nil)
	if err := p.Process(optest.Records(M{})[0], func(flowruntime.Record) {}); err == nil || !strings.Contains(err.Error(), "not an object") {
		t.Errorf("to yielding a string: %v", err)
	}
}

func TestTakeSkip(t *testing.T) {
	var in []flowruntime.Record
	for i := range 5 {
		in = append(in, flowruntime.Record{Fields: M{"i": int64(i)}})
	}
	got := optest.Process(t, processor(t, "take", M{"count": 2}, nil), in...)
	if diff := cmp.Diff([]M{{"i": int64(0)}, {"i": int64(1)}}, got); diff != "" {
		t.Errorf("take (-want +got):\n%s", diff)
	}
	got = optest.Process(t, processor(t, "skip", M{"count": 3}, nil), in...)
	if diff := cmp.Diff([]M{{"i": int64(3)}, {"i": int64(4)}}, got); diff != "" {
		t.Errorf("skip (-want +got):\n%s", diff)
	}
	if got := optest.Process(t, processor(t, "take", M{"count": 0}, nil), in...); len(got) != 0 {
		t.Errorf("take 0 passed %v", got)
	}
	buildErr(t, "skip", M{"count": -1})
}

func TestDedupe(t *testing.T) {
	p := processor(t, "dedupe", M{"key": "id", "capacity": 2}, nil)
	ids := []any{int64(1), int64(1), int64(2), "1", int64(2), int64(3), int64(1), []any{int64(1)}, []any{int64(1)}}
	var in []flowruntime.Record
	for _, id := range ids {
		in = append(in, flowruntime.Record{Fields: M{"id": id}})
	}
	got := optest.Process(t, p, in...)
	// Capacity 2: after 1, 2, "1" the key 1 is forgotten and passes again.
	want := []M{{"id": int64(1)}, {"id": int64(2)}, {"id": "1"}, {"id": int64(3)}, {"id": int64(1)}, {"id": []any{int64(1)}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDedupeTTL(t *testing.T) {
	clock := optest.NewClock(time.Unix(0, 0))
	p := processor(t, "dedupe", M{"key": "id", "ttl": time.Minute}, clock)
	var passed []string
	emit := func(r flowruntime.Record) { passed = append(passed, r.Fields["id"].(string)) }
	step := func(id string, advance time.Duration) {
		clock.Advance(advance)
		if err := p.Process(flowruntime.Record{Fields: M{"id": id}}, emit); err != nil {
			t.Fatal(err)
		}
	}
	step("a", 0)
	step("b", 30*time.Second)
	step("a", 20*time.Second) // 50s after a: a duplicate
	step("a", 10*time.Second) // 60s after a: forgotten, passes
	step("b", 0)              // 30s after b: a duplicate
	step("b", 30*time.Second) // 60s after b: passes
	if diff := cmp.Diff([]string{"a", "b", "a", "b"}, passed); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestReduce(t *testing.T) {
	in := optest.Records(
		M{"host": "a", "bytes": int64(10)},
		M{"host": "b", "bytes": int64(5)},
		M{"host": "a", "bytes": int64(1), "acc": "own field"},
	)
	tests := []struct {
		name string
		opts M
		want []M
	}{
		{"count", M{"step": "acc + 1"}, []M{{"value": int64(3)}}},
		{"sum per host", M{"step": "acc + bytes", "group": "host"},
			[]M{{"key": "a", "value": int64(11)}, {"key": "b", "value": int64(5)}}},
		{"object accumulator", M{"init": M{"n": int64(0), "max": int64(0)}, "step": "{n: acc.n + 1, max: max([acc.max, bytes])}"},
			[]M{{"value": M{"n": int64(3), "max": int64(10)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := processor(t, "reduce", tt.opts, nil)
			// Copy the input: reduce must leave the records' own fields alone.
			var recs []flowruntime.Record
			for _, r := range in {
				c := M{}
				for k, v := range r.Fields {
					c[k] = v
				}
				recs = append(recs, flowruntime.Record{Fields: c})
			}
			got := optest.Process(t, p, recs...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if recs[2].Fields["acc"] != "own field" {
				t.Errorf("the record's acc field became %v", recs[2].Fields["acc"])
			}
			if _, ok := recs[0].Fields["acc"]; ok {
				t.Error("acc left in a record")
			}
		})
	}
	t.Run("empty stream", func(t *testing.T) {
		got := optest.Process(t, processor(t, "reduce", M{"step": "acc + 1"}, nil))
		if diff := cmp.Diff([]M{{"value": int64(0)}}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("max_groups", func(t *testing.T) {
		p := processor(t, "reduce", M{"step": "acc + 1", "group": "host", "max_groups": 1}, nil)
		noop := func(flowruntime.Record) {}
		if err := p.Process(in[0], noop); err != nil {
			t.Fatal(err)
		}
		if err := p.Process(in[1], noop); err == nil || !strings.Contains(err.Error(), "max_groups") {
			t.Errorf("a second group: %v, want a max_groups error", err)
		}
		if h := p.(flowruntime.Holder).Held(); h != 1 {
			t.Errorf("Held = %d, want 1", h)
		}
	})
}

func TestReduceEvery(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := optest.NewClock(start.Add(500 * time.Millisecond))
	p := processor(t, "reduce", M{"step": "acc + n", "group": "host", "every": time.Second}, clock)
	timed, holder := p.(flowruntime.Timed), p.(flowruntime.Holder)
	var out []M
	emit := func(r flowruntime.Record) { out = append(out, r.Fields) }
	process := func(host string, n int64) {
		if err := p.Process(flowruntime.Record{Fields: M{"host": host, "n": n}}, emit); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := timed.Deadline(); ok {
		t.Error("a deadline before any record")
	}
	process("a", 1)
	process("b", 2)
	process("a", 3)
	deadline, ok := timed.Deadline()
	if !ok || !deadline.Equal(start.Add(time.Second)) {
		t.Fatalf("Deadline = %v %v, want the end of the aligned second", deadline, ok)
	}
	clock.Advance(time.Second)
	if err := timed.Tick(clock.Now(), emit); err != nil {
		t.Fatal(err)
	}
	if holder.Held() != 0 {
		t.Errorf("Held = %d after the period was emitted", holder.Held())
	}
	// A record after a period ended without a tick closes that period first.
	clock.Advance(2 * time.Second)
	process("c", 4)
	clock.Advance(2 * time.Second)
	process("c", 5)
	if err := holder.Flush(emit); err != nil {
		t.Fatal(err)
	}
	want := []M{
		{"key": "a", "value": int64(4), "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z"},
		{"key": "b", "value": int64(2), "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z"},
		{"key": "c", "value": int64(4), "start": "2026-01-01T00:00:03Z", "end": "2026-01-01T00:00:04Z"},
		{"key": "c", "value": int64(5), "start": "2026-01-01T00:00:05Z", "end": "2026-01-01T00:00:06Z"},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestBatch(t *testing.T) {
	clock := optest.NewClock(time.Unix(0, 0))
	p := processor(t, "batch", M{"size": 2, "timeout": 500 * time.Millisecond}, clock)
	h, timed := p.(flowruntime.Holder), p.(flowruntime.Timed)
	var out []M
	emit := func(r flowruntime.Record) { out = append(out, r.Fields) }
	recs := optest.Records(M{"i": int64(0)}, M{"i": int64(1)}, M{"i": int64(2)})
	for _, r := range recs {
		if err := p.Process(r, emit); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]M{{"count": int64(2), "records": []any{M{"i": int64(0)}, M{"i": int64(1)}}}}, out); diff != "" {
		t.Fatalf("full batch (-want +got):\n%s", diff)
	}
	if h.Held() != 1 {
		t.Errorf("Held = %d, want 1", h.Held())
	}
	deadline, ok := timed.Deadline()
	if !ok || !deadline.Equal(time.Unix(0, 0).Add(500*time.Millisecond)) {
		t.Fatalf("Deadline = %v, %v", deadline, ok)
	}
	if err := timed.Tick(deadline.Add(-time.Nanosecond), emit); err != nil || len(out) != 1 {
		t.Fatalf("Tick before the deadline emitted: %v %v", out, err)
	}
	if err := timed.Tick(deadline, emit); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(M{"count": int64(1), "records": []any{M{"i": int64(2)}}}, out[len(out)-1]); diff != "" || len(out) != 2 {
		t.Errorf("timed-out batch (-want +got):\n%s", diff)
	}
	if _, ok := timed.Deadline(); ok || h.Held() != 0 {
		t.Errorf("after the timeout: deadline pending %v, held %d", ok, h.Held())
	}
	if err := h.Flush(emit); err != nil || len(out) != 2 {
		t.Errorf("Flush of an empty batch emitted: %v %v", out, err)
	}
}

func TestWindowCount(t *testing.T) {
	clock := optest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := processor(t, "window", M{"size": 2, "group": "host"}, clock)
	var in []flowruntime.Record
	for i, host := range []string{"a", "b", "a", "b", "a"} {
		in = append(in, flowruntime.Record{Fields: M{"host": host, "i": int64(i)}})
	}
	got := optest.Process(t, p, in...)
	var summary []string
	for _, w := range got {
		summary = append(summary, w["key"].(string)+":"+strings.Repeat("*", int(w["count"].(int64))))
	}
	if diff := cmp.Diff([]string{"a:**", "b:**", "a:*"}, summary); diff != "" {
		t.Errorf("windows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{M{"host": "a", "i": int64(0)}, M{"host": "a", "i": int64(2)}}, got[0]["records"]); diff != "" {
		t.Errorf("first window's records (-want +got):\n%s", diff)
	}
}

func TestWindowTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := optest.NewClock(start.Add(300 * time.Millisecond))
	p := processor(t, "window", M{"every": time.Second}, clock)
	timed := p.(flowruntime.Timed)
	var out []M
	emit := func(r flowruntime.Record) { out = append(out, r.Fields) }
	process := func(i int) {
		if err := p.Process(flowruntime.Record{Fields: M{"i": int64(i)}}, emit); err != nil {
			t.Fatal(err)
		}
	}
	process(0)
	process(1)
	deadline, ok := timed.Deadline()
	if !ok || !deadline.Equal(start.Add(time.Second)) {
		t.Fatalf("Deadline = %v %v, want the end of the aligned second", deadline, ok)
	}
	clock.Advance(time.Second) // now 1.3s: the first window is over
	if err := timed.Tick(clock.Now(), emit); err != nil {
		t.Fatal(err)
	}
	process(2)
	if err := p.(flowruntime.Holder).Flush(emit); err != nil {
		t.Fatal(err)
	}
	want := []M{
		{"count": int64(2), "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z",
			"records": []any{M{"i": int64(0)}, M{"i": int64(1)}}},
		{"count": int64(1), "start": "2026-01-01T00:00:01Z", "end": "2026-01-01T00:00:02Z",
			"records": []any{M{"i": int64(2)}}},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestWindowMaxRecords(t *testing.T) {
	p := processor(t, "window", M{"every": time.Minute, "max_records": 2}, optest.NewClock(time.Unix(0, 0)))
	got := optest.Process(t, p, optest.Records(M{}, M{}, M{})...)
	if len(got) != 2 || got[0]["count"] != int64(2) || got[1]["count"] != int64(1) {
		t.Errorf("windows = %v, want one of 2 emitted early and one of 1", got)
	}
	if msg := buildErr(t, "window", M{"size": 2, "every": time.Second}); !strings.Contains(msg, "not both") {
		t.Errorf("size and every: %s", msg)
	}
	buildErr(t, "window", M{})
}

func TestThrottle(t *testing.T) {
	start := time.Unix(1000, 0)
	clock := optest.NewClock(start)
	p := processor(t, "throttle", M{"rate": 10.0, "per": time.Second, "burst": 5}, clock)
	gate := p.(flowruntime.Gate)
	for range 25 {
		if err := gate.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// A burst of 5 passes at once, the other 20 at 10 per second.
	if got, want := clock.Now().Sub(start), 2*time.Second; got != want {
		t.Errorf("25 records took %v, want %v", got, want)
	}
	// TryWait passes a record only when a token is there, without waiting.
	try := p.(flowruntime.TryGate)
	if try.TryWait() {
		t.Error("TryWait passed a record with the bucket empty")
	}
	clock.Advance(300 * time.Millisecond) // three tokens
	passed := 0
	for try.TryWait() {
		passed++
	}
	if passed != 3 || clock.Now().Sub(start) != 2300*time.Millisecond {
		t.Errorf("TryWait passed %d records after 300ms, want 3, without moving the clock", passed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := gate.Wait(ctx); err == nil {
		t.Error("Wait with a cancelled context succeeded")
	}
	for _, opts := range []M{{"rate": 0.0}, {"rate": 1.0, "burst": 0}, {"rate": 1.0, "per": time.Duration(0)}} {
		buildErr(t, "throttle", opts)
	}
}

func benchProcess(b *testing.B, kind string, opts M) {
	p := processor(b, kind, opts, nil)
	rec := flowruntime.Record{Fields: M{"level": "ERROR", "msg": "disk full", "id": int64(7)}}
	emit := func(flowruntime.Record) {}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Process(rec, emit); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	benchProcess(b, "filter", M{"where": `level == "ERROR" && len(msg) > 0`})
}

func BenchmarkMapSet(b *testing.B) {
	benchProcess(b, "map", M{"set": [][2]string{{"msg", "upper(msg)"}, {"id2", "id * 2"}}})
}
