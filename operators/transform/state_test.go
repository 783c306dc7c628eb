package transform_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// arrival is a record coming after gap.
type arrival struct {
	gap    time.Duration
	fields M
}

// emitted is what a processor emitted: the fields and the source position
// (a batch carries its first record's).
type emitted struct {
	Fields   M
	Position int64
}

// feeder drives a processor as the runtime does: before each record it
// ticks a Timed processor at every deadline that came, at that deadline's
// time; at the end it ticks what is due and flushes a Holder.
type feeder struct {
	t     *testing.T
	clock *optest.Clock
	out   []emitted
}

func (f *feeder) emit(r flowruntime.Record) {
	f.out = append(f.out, emitted{Fields: r.Fields, Position: r.Meta.Position})
}

// tickUntil ticks p at each of its deadlines up to now.
func (f *feeder) tickUntil(p flowruntime.Processor, now time.Time) {
	tm, ok := p.(flowruntime.Timed)
	for ok {
		dl, due := tm.Deadline()
		if !due || dl.After(now) {
			return
		}
		if dl.After(f.clock.Now()) {
			f.clock.Advance(dl.Sub(f.clock.Now()))
		}
		if err := tm.Tick(f.clock.Now(), f.emit); err != nil {
			f.t.Fatalf("tick: %v", err)
		}
	}
}

// feed gives p the arrivals from index from on, each as a fresh copy.
func (f *feeder) feed(p flowruntime.Processor, in []arrival, from int) {
	for i := from; i < len(in); i++ {
		at := f.clock.Now().Add(in[i].gap)
		f.tickUntil(p, at)
		f.clock.Advance(at.Sub(f.clock.Now()))
		fields, _ := operators.Clone(in[i].fields).(M)
		rec := flowruntime.Record{Fields: fields, Meta: flowruntime.Meta{Position: int64(i)}}
		if err := p.Process(rec, f.emit); err != nil {
			f.t.Fatalf("process %v: %v", in[i].fields, err)
		}
	}
}

// finish ticks what is due now and flushes p.
func (f *feeder) finish(p flowruntime.Processor) {
	f.tickUntil(p, f.clock.Now())
	if h, ok := p.(flowruntime.Holder); ok {
		if err := h.Flush(f.emit); err != nil {
			f.t.Fatalf("flush: %v", err)
		}
	}
}

var stateEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// mixed is a stream whose values have every JSON-like type, with whole
// floats next to integers of the same value: a restored stage must keep
// them apart.
var mixed = []arrival{
	{0, M{"host": "a", "n": int64(1), "k": int64(1)}},
	{30 * time.Millisecond, M{"host": "b", "n": 2.5, "k": 1.0}},
	{30 * time.Millisecond, M{"host": "a", "n": 3.0, "k": "1"}},
	{30 * time.Millisecond, M{"host": "c", "n": int64(-4), "k": []any{int64(1), 1.0}, "o": M{"deep": M{"x": nil}}}},
	{30 * time.Millisecond, M{"host": "a", "n": 1e-9, "k": int64(1), "flag": true}},
	{30 * time.Millisecond, M{"host": "b", "n": int64(6), "k": 1.0, "s": "é \"q\" <&>\n"}},
	{30 * time.Millisecond, M{"host": "a", "n": 1e22, "k": []any{int64(1), 1.0}}},
	{90 * time.Millisecond, M{"host": "c", "n": int64(8), "k": M{"a": int64(1)}}},
	{30 * time.Millisecond, M{"host": "a", "n": 0.5, "k": "2"}},
	{30 * time.Millisecond, M{"host": "b", "n": int64(10), "k": int64(3)}},
	{250 * time.Millisecond, M{"host": "c", "n": 2.0, "k": int64(1)}},
	{30 * time.Millisecond, M{"host": "a", "n": int64(12), "k": 1.0}},
}

// statefulCases are the stateful stages, each with options that exercise
// its state.
var statefulCases = []struct {
	name, kind string
	opts       M
}{
	{"reduce count", "reduce", M{"step": "acc + 1"}},
	{"reduce sum per host", "reduce", M{"group": "host", "step": "acc + n"}},
	{"reduce object accumulator", "reduce", M{"group": "host", "init": M{"n": int64(0), "sum": 0.0, "ks": []any{}},
		"step": "{n: acc.n + 1, sum: acc.sum + n, ks: concat(acc.ks, [k])}"}},
	{"reduce every", "reduce", M{"group": "host", "step": "acc + n", "every": 100 * time.Millisecond}},
	{"window count per host", "window", M{"group": "host", "size": 2}},
	{"window count max_records", "window", M{"size": 4, "max_records": 3, "group": "k"}},
	{"window time", "window", M{"every": 100 * time.Millisecond}},
	{"window time per host", "window", M{"group": "host", "every": 100 * time.Millisecond}},
	{"batch", "batch", M{"size": 3, "timeout": time.Duration(0)}},
	{"batch timeout", "batch", M{"size": 4, "timeout": 70 * time.Millisecond}},
	{"dedupe", "dedupe", M{"key": "k"}},
	{"dedupe capacity", "dedupe", M{"key": "k", "capacity": 2}},
	{"dedupe ttl", "dedupe", M{"key": "k", "ttl": 100 * time.Millisecond}},
	{"take", "take", M{"count": 5}},
	{"skip", "skip", M{"count": 5}},
}

// TestStateRestartEquivalence stops each stateful stage after every prefix
// of a stream, saves its state, restores it into a newly built stage and
// feeds that one the rest: what both emit together equals what one stage
// given the whole stream emits. Restoring and saving again gives the same
// bytes, and the restored stage holds as many records.
func TestStateRestartEquivalence(t *testing.T) {
	for _, tt := range statefulCases {
		t.Run(tt.name, func(t *testing.T) {
			build := func(clock *optest.Clock) flowruntime.Processor {
				return processor(t, tt.kind, tt.opts, clock)
			}
			whole := &feeder{t: t, clock: optest.NewClock(stateEpoch.Add(10 * time.Millisecond))}
			p := build(whole.clock)
			whole.feed(p, mixed, 0)
			whole.finish(p)

			for split := range len(mixed) + 1 {
				f := &feeder{t: t, clock: optest.NewClock(stateEpoch.Add(10 * time.Millisecond))}
				first := build(f.clock)
				f.feed(first, mixed[:split], 0)
				state, err := first.(flowruntime.Stateful).SaveState()
				if err != nil {
					t.Fatalf("split %d: save: %v", split, err)
				}
				second := build(f.clock)
				if err := second.(flowruntime.Stateful).RestoreState(state); err != nil {
					t.Fatalf("split %d: restore %s: %v", split, state, err)
				}
				again, err := second.(flowruntime.Stateful).SaveState()
				if err != nil {
					t.Fatalf("split %d: save the restored state: %v", split, err)
				}
				if !bytes.Equal(again, state) {
					t.Errorf("split %d: the restored stage saves\n%s\nnot\n%s", split, again, state)
				}
				if h, ok := first.(flowruntime.Holder); ok {
					if a, b := h.Held(), second.(flowruntime.Holder).Held(); a != b {
						t.Errorf("split %d: the restored stage holds %d records, the first held %d", split, b, a)
					}
				}
				f.feed(second, mixed, split)
				f.finish(second)
				if diff := cmp.Diff(whole.out, f.out); diff != "" {
					t.Fatalf("split %d, state %s: (-uninterrupted +restarted):\n%s", split, state, diff)
				}
			}
		})
	}
}

// TestStateDownTime restores time-bound state after the clock moved past
// its deadlines while the pipeline was down: what ended is emitted, as it
// was, at the first tick; keys whose ttl passed are forgotten.
func TestStateDownTime(t *testing.T) {
	tests := []struct {
		name, kind string
		opts       M
		want       []M
	}{
		{"window", "window", M{"every": 100 * time.Millisecond},
			[]M{{"count": int64(2), "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00.1Z",
				"records": []any{M{"i": int64(0)}, M{"i": int64(1)}}}}},
		{"reduce every", "reduce", M{"step": "acc + i", "every": 100 * time.Millisecond},
			[]M{{"value": int64(1), "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00.1Z"}}},
		{"batch timeout", "batch", M{"size": 10, "timeout": 50 * time.Millisecond},
			[]M{{"count": int64(2), "records": []any{M{"i": int64(0)}, M{"i": int64(1)}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := optest.NewClock(stateEpoch.Add(20 * time.Millisecond))
			first := processor(t, tt.kind, tt.opts, clock)
			f := &feeder{t: t, clock: clock}
			f.feed(first, []arrival{{0, M{"i": int64(0)}}, {10 * time.Millisecond, M{"i": int64(1)}}}, 0)
			state, err := first.(flowruntime.Stateful).SaveState()
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour)
			second := processor(t, tt.kind, tt.opts, clock)
			if err := second.(flowruntime.Stateful).RestoreState(state); err != nil {
				t.Fatal(err)
			}
			dl, ok := second.(flowruntime.Timed).Deadline()
			if !ok || !dl.Before(clock.Now()) {
				t.Fatalf("restored deadline %v (%v), want the saved one, passed", dl, ok)
			}
			if err := second.(flowruntime.Timed).Tick(clock.Now(), f.emit); err != nil {
				t.Fatal(err)
			}
			var got []M
			for _, e := range f.out {
				got = append(got, e.Fields)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("first tick after the restart (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("dedupe ttl", func(t *testing.T) {
		clock := optest.NewClock(stateEpoch)
		opts := M{"key": "k", "ttl": time.Minute}
		first := processor(t, "dedupe", opts, clock)
		optest.Process(t, first, optest.Records(M{"k": "old"})...)
		clock.Advance(50 * time.Second)
		optest.Process(t, first, optest.Records(M{"k": "new"})...)
		state, err := first.(flowruntime.Stateful).SaveState()
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(30 * time.Second) // old: 80s, forgotten; new: 30s, kept
		second := processor(t, "dedupe", opts, clock)
		if err := second.(flowruntime.Stateful).RestoreState(state); err != nil {
			t.Fatal(err)
		}
		got := optest.Process(t, second, optest.Records(M{"k": "new"}, M{"k": "old"})...)
		if diff := cmp.Diff([]M{{"k": "old"}}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// TestStateChangedOptions restores state into a stage whose count or
// capacity changed: the state counts what was done, so the new option
// applies to the rest.
func TestStateChangedOptions(t *testing.T) {
	in := optest.Records(M{"i": int64(0)}, M{"i": int64(1)}, M{"i": int64(2)}, M{"i": int64(3)}, M{"i": int64(4)})
	tests := []struct {
		name, kind   string
		before, then M
		// split is how many records the first stage is given.
		split int
		want  []int64
	}{
		{"take counts what passed", "take", M{"count": 3}, M{"count": 4}, 2, []int64{2, 3}},
		{"take already done", "take", M{"count": 2}, M{"count": 2}, 3, nil},
		{"skip counts what it dropped", "skip", M{"count": 3}, M{"count": 2}, 2, []int64{2, 3, 4}},
		{"dedupe keeps the newest keys", "dedupe", M{"key": "i % 4", "capacity": 10}, M{"key": "i % 4", "capacity": 2}, 4, []int64{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := processor(t, tt.kind, tt.before, nil)
			optest.Process(t, first, in[:tt.split]...)
			state, err := first.(flowruntime.Stateful).SaveState()
			if err != nil {
				t.Fatal(err)
			}
			second := processor(t, tt.kind, tt.then, nil)
			if err := second.(flowruntime.Stateful).RestoreState(state); err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, f := range optest.Process(t, second, in[tt.split:]...) {
				got = append(got, f["i"].(int64))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("after the restart (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStateFormat pins what each stage writes: readable JSON, versioned,
// with whole floats written as floats.
func TestStateFormat(t *testing.T) {
	clock := optest.NewClock(stateEpoch.Add(250 * time.Millisecond))
	tests := []struct {
		kind string
		opts M
		in   []M
		want string
	}{
		{"reduce", M{"group": "host", "step": "acc + n"}, []M{{"host": "a", "n": 2.0}, {"host": "b", "n": int64(2)}},
			`{"v":1,"kind":"reduce","grouped":true,"held":2,"groups":[{"key":"a","value":2.0},{"key":"b","value":2}]}`},
		{"reduce", M{"step": "acc + 1", "every": time.Second}, []M{{}},
			`{"v":1,"kind":"reduce","every":"1s","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","held":1,"groups":[{"value":1}]}`},
		{"window", M{"every": time.Second}, []M{{"x": 1.5}},
			`{"v":1,"kind":"window","every":"1s","windows":[{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","records":[{"x":1.5}]}]}`},
		{"window", M{"size": 5, "group": "g"}, []M{{"g": []any{int64(1)}}},
			`{"v":1,"kind":"window","grouped":true,"windows":[{"key":[1],"start":"2026-01-01T00:00:00.25Z","end":"2026-01-01T00:00:00.25Z","records":[{"g":[1]}]}]}`},
		{"batch", M{"size": 5}, []M{{"a": int64(1)}},
			`{"v":1,"kind":"batch","records":[{"a":1}],"first":{},"deadline":"2026-01-01T00:00:01.25Z"}`},
		{"dedupe", M{"key": "k"}, []M{{"k": int64(1)}, {"k": 1.0}, {"k": M{"b": int64(2), "a": nil}}},
			`{"v":1,"kind":"dedupe","keys":[1,1.0,"{\"a\":null,\"b\":2}"]}`},
		{"dedupe", M{"key": "k", "ttl": time.Minute}, []M{{"k": "x"}},
			`{"v":1,"kind":"dedupe","keys":["x"],"at":["2026-01-01T00:00:00.25Z"]}`},
		{"take", M{"count": 5}, []M{{}, {}}, `{"v":1,"kind":"take","passed":2}`},
		{"skip", M{"count": 5}, []M{{}, {}}, `{"v":1,"kind":"skip","skipped":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			p := processor(t, tt.kind, tt.opts, clock)
			for _, r := range optest.Records(tt.in...) {
				if err := p.Process(r, func(flowruntime.Record) {}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := p.(flowruntime.Stateful).SaveState()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("state\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestStateErrors feeds each stage states it cannot use: every error names
// the stage and says what is wrong.
func TestStateErrors(t *testing.T) {
	tests := []struct {
		kind  string
		opts  M
		state string
		want  string
	}{
		{"reduce", M{"step": "acc + 1"}, `not json`, `not a saved state`},
		{"reduce", M{"step": "acc + 1"}, `[1, 2]`, `not a saved state`},
		{"reduce", M{"step": "acc + 1"}, `{"offset": 3}`, `not a saved state: no "v" and "kind"`},
		{"reduce", M{"step": "acc + 1"}, `{"v":1,"kind":"dedupe","keys":[]}`, `the state of a dedupe stage, not of a reduce`},
		{"reduce", M{"step": "acc + 1"}, `{"v":2,"kind":"reduce","held":0,"groups":[]}`, `state version 2, but this flowrun reads version 1`},
		{"reduce", M{"step": "acc + 1"}, `{"v":1,"kind":"reduce","held":0,"groups":[],"extra":1}`, `unknown field "extra"`},
		{"reduce", M{"step": "acc + 1"}, `{"v":1,"kind":"reduce","held":0,"groups":[]} {}`, `not a saved state: invalid character '{' after top-level value`},
		{"reduce", M{"step": "acc + 1"}, `{"v":1,"kind":"reduce","grouped":true,"held":1,"groups":[{"key":"a","value":1}]}`, `saved by a stage with group, but this one has none`},
		{"reduce", M{"step": "acc + 1", "group": "h"}, `{"v":1,"kind":"reduce","held":1,"groups":[{"value":1}]}`, `saved by a stage without group`},
		{"reduce", M{"step": "acc + 1"}, `{"v":1,"kind":"reduce","every":"1s","held":0,"groups":[]}`, `saved by a stage with every = 1s, but this one has no every`},
		{"reduce", M{"step": "acc + 1", "every": time.Second}, `{"v":1,"kind":"reduce","every":"1s","held":1,"groups":[{"value":1}]}`, `without the period`},
		{"reduce", M{"step": "acc + 1", "group": "h"}, `{"v":1,"kind":"reduce","grouped":true,"held":2,"groups":[{"key":1,"value":1},{"key":1,"value":1}]}`, `saved twice`},
		{"reduce", M{"step": "acc + 1"}, `{"v":1,"kind":"reduce","held":1,"groups":[{}]}`, `a value is missing`},
		{"window", M{"size": 2}, `{"v":1,"kind":"window","every":"1m0s","windows":[]}`, `saved by a stage with every = 1m0s, but this one has no every`},
		{"window", M{"size": 2}, `{"v":1,"kind":"window","windows":[{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z","records":[5]}]}`, `record 0 is a number, not an object`},
		{"window", M{"size": 2}, `{"v":1,"kind":"window","windows":[{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z","records":[]}]}`, `without records`},
		{"window", M{"every": time.Second}, `{"v":1,"kind":"window","every":"1s","windows":[{"start":"2026-01-01T00:00:01Z","end":"2026-01-01T00:00:00Z","records":[{}]}]}`, `is not after its start`},
		{"batch", M{"size": 2}, `{"v":1,"kind":"batch","records":[{}]}`, `without their first record's metadata`},
		{"dedupe", M{"key": "k"}, `{"v":1,"kind":"dedupe","keys":[1,2],"at":["2026-01-01T00:00:00Z"]}`, `2 keys but 1 times`},
		{"dedupe", M{"key": "k"}, `{"v":1,"kind":"dedupe","keys":[1,1]}`, `key 1: 1 saved twice`},
		{"dedupe", M{"key": "k"}, `{"v":1,"kind":"dedupe","keys":[[1]]}`, `not a key as dedupe keeps it`},
		{"take", M{"count": 2}, `{"v":1,"kind":"take"}`, `no "passed" in the state`},
		{"take", M{"count": 2}, `{"v":1,"kind":"take","passed":-1}`, `negative passed count -1`},
		{"take", M{"count": 2}, `{"v":1,"kind":"skip","skipped":1}`, `the state of a skip stage, not of a take`},
		{"skip", M{"count": 2}, `{"v":1,"kind":"skip","skipped":"x"}`, `malformed skip state`},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.want, func(t *testing.T) {
			p := processor(t, tt.kind, tt.opts, optest.NewClock(stateEpoch))
			err := p.(flowruntime.Stateful).RestoreState([]byte(tt.state))
			prefix := tt.kind + ` "` + tt.kind + `": restore state: `
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RestoreState(%s) = %v, want %q and %q", tt.state, err, prefix, tt.want)
			}
		})
	}
}

// TestStateSaveErrors: a value JSON cannot hold fails the save, naming the
// stage, rather than saving something else.
func TestStateSaveErrors(t *testing.T) {
	p := processor(t, "reduce", M{"step": "acc + n / z"}, nil)
	if err := p.Process(optest.Records(M{"n": int64(1), "z": 0.0})[0], func(flowruntime.Record) {}); err != nil {
		t.Fatal(err)
	}
	_, err := p.(flowruntime.Stateful).SaveState()
	if err == nil || !strings.Contains(err.Error(), `reduce "reduce": save state: accumulator: the value cannot be saved: encode +Inf as JSON: not a JSON number`) {
		t.Errorf("SaveState of an infinite accumulator = %v", err)
	}
}
