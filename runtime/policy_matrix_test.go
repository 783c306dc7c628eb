package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// fault decides, per try, whether the record with i == 7 fails, and how.
type fault int

const (
	recovers  fault = iota // fails transiently twice, then succeeds
	transient              // fails transiently on every try
	permanent              // fails permanently
)

func (f fault) String() string { return [...]string{"recovers", "transient", "permanent"}[f] }

var errTransient = errors.New("connection reset")

// faults counts the tries of record 7 and answers with f's error.
type faults struct {
	f     fault
	mu    sync.Mutex
	tries int
}

func (x *faults) check(recs []flowruntime.Record) error {
	has7 := slices.ContainsFunc(recs, func(r flowruntime.Record) bool { return field(r) == 7 })
	if !has7 {
		return nil
	}
	x.mu.Lock()
	x.tries++
	n := x.tries
	x.mu.Unlock()
	switch {
	case x.f == permanent:
		return onerror.Permanent(errors.New("rejected"))
	case x.f == transient || n <= 2:
		return errTransient
	}
	return nil
}

// caller calls faults for each record.
type caller struct{ x *faults }

func (c caller) Call(_ context.Context, r flowruntime.Record) (flowruntime.Record, error) {
	return r, c.x.check([]flowruntime.Record{r})
}
func (caller) Concurrency() int { return 2 }
func (caller) Ordered() bool    { return true }

// rejecting emits records 0..19 in units of 10 and rejects record 7 as
// undecodable input, emitting what came before it first.
type rejecting struct{ acked [20]bool }

func (s *rejecting) Run(ctx context.Context, out flowruntime.Emitter) error {
	var pending []flowruntime.Record
	flush := func() error {
		recs := pending
		pending = nil
		return out.Emit(ctx, recs, func() {
			for _, r := range recs {
				s.acked[field(r)] = true
			}
		})
	}
	for i := range 20 {
		r := flowruntime.Record{Fields: map[string]any{"i": int64(i)}, Meta: flowruntime.Meta{Source: "src", Position: int64(i)}}
		if i == 7 {
			if err := flush(); err != nil {
				return err
			}
			if err := flowruntime.Reject(ctx, out, r, errors.New("line 8: not JSON")); err != nil {
				return err
			}
			continue
		}
		pending = append(pending, r)
		if len(pending) == 10 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// ids parses "0-6,8" into the set of ids; "all" is 0-19 and "-" none.
func ids(t *testing.T, spec string) []int64 {
	t.Helper()
	var out []int64
	switch spec {
	case "-":
		return nil
	case "all":
		spec = "0-19"
	}
	for part := range strings.SplitSeq(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("bad spec %q", spec)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				t.Fatalf("bad spec %q", spec)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, int64(i))
		}
	}
	return out
}

func without(all []int64, drop ...int64) []int64 {
	return slices.DeleteFunc(slices.Clone(all), func(i int64) bool { return slices.Contains(drop, i) })
}

func sortedIDs(recs []flowruntime.Record) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		out = append(out, field(r))
	}
	slices.Sort(out)
	return out
}

// TestErrorPolicyMatrix runs every kind of failure under every policy and
// class of error, and checks which records were written, dead-lettered,
// skipped, or failed the run. Record 7 is the one that fails; edges carry
// batches of 10, so a sink's batch holds records 0-9.
func TestErrorPolicyMatrix(t *testing.T) {
	type want struct {
		written, dead string // id specs (see ids); "all-7" is all but 7
		skipped       int64
		fail          string // the record the run fails at, "" when it does not
		upTo          bool   // written is at most the spec (the run failed at once)
	}
	type row struct {
		where string // processor, sink, call
		mode  string // a mode, or retry+dl for retry with a dead letter
		fault fault
		want  want
	}
	var rows []row
	// A processor and a call fail record by record.
	for _, where := range []string{"processor", "call"} {
		rows = append(rows,
			row{where, "stop", recovers, want{written: "0-6", fail: "7", upTo: true}},
			row{where, "stop", transient, want{written: "0-6", fail: "7", upTo: true}},
			row{where, "stop", permanent, want{written: "0-6", fail: "7", upTo: true}},
			row{where, "skip", recovers, want{written: "all", dead: "-"}},
			row{where, "skip", transient, want{written: "all-7", dead: "-", skipped: 1}},
			row{where, "skip", permanent, want{written: "all-7", dead: "-", skipped: 1}},
			row{where, "retry", recovers, want{written: "all", dead: "-"}},
			row{where, "retry", transient, want{written: "0-6", fail: "7", upTo: true}},
			row{where, "retry", permanent, want{written: "0-6", fail: "7", upTo: true}},
			row{where, "retry+dl", recovers, want{written: "all", dead: "-"}},
			row{where, "retry+dl", transient, want{written: "all-7", dead: "7"}},
			row{where, "retry+dl", permanent, want{written: "all-7", dead: "7"}},
			row{where, "dead_letter", recovers, want{written: "all", dead: "-"}},
			row{where, "dead_letter", transient, want{written: "all-7", dead: "7"}},
			row{where, "dead_letter", permanent, want{written: "all-7", dead: "7"}},
		)
	}
	// A sink fails a batch: a transient error belongs to the whole batch
	// (0-9); a permanent one is split down to record 7.
	rows = append(rows,
		row{"sink", "stop", recovers, want{written: "-", fail: "0", upTo: true}},
		row{"sink", "stop", transient, want{written: "-", fail: "0", upTo: true}},
		row{"sink", "stop", permanent, want{written: "0-6", fail: "7"}},
		row{"sink", "skip", recovers, want{written: "all", dead: "-"}},
		row{"sink", "skip", transient, want{written: "10-19", dead: "-", skipped: 10}},
		row{"sink", "skip", permanent, want{written: "all-7", dead: "-", skipped: 1}},
		row{"sink", "retry", recovers, want{written: "all", dead: "-"}},
		row{"sink", "retry", transient, want{written: "-", fail: "0", upTo: true}},
		row{"sink", "retry", permanent, want{written: "0-6", fail: "7"}},
		row{"sink", "retry+dl", recovers, want{written: "all", dead: "-"}},
		row{"sink", "retry+dl", transient, want{written: "10-19", dead: "0-9"}},
		row{"sink", "retry+dl", permanent, want{written: "all-7", dead: "7"}},
		row{"sink", "dead_letter", recovers, want{written: "all", dead: "-"}},
		row{"sink", "dead_letter", transient, want{written: "10-19", dead: "0-9"}},
		row{"sink", "dead_letter", permanent, want{written: "all-7", dead: "7"}},
	)
	// A source's undecodable input is permanent; what came before it is
	// always written.
	rows = append(rows,
		row{"source", "stop", permanent, want{written: "0-6", fail: "7"}},
		row{"source", "skip", permanent, want{written: "all-7", dead: "-", skipped: 1}},
		row{"source", "retry", permanent, want{written: "0-6", fail: "7"}},
		row{"source", "dead_letter", permanent, want{written: "all-7", dead: "7"}},
	)
	for _, tc := range rows {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.where, tc.mode, tc.fault), func(t *testing.T) {
			x := &faults{f: tc.fault}
			pol := onerror.Policy{Attempts: 3, Backoff: time.Microsecond, MaxBackoff: time.Microsecond}
			modeName, withDL := strings.CutSuffix(tc.mode, "+dl")
			pol.Mode, _ = onerror.ParseMode(modeName)
			withDL = withDL || pol.Mode == onerror.DeadLetter

			sink, dead := &collect{}, &collect{}
			var src flowruntime.Source = &gen{count: 20, per: 10}
			var failing string
			g := &flowruntime.Graph{Pipeline: "p"}
			switch tc.where {
			case "processor":
				failing = "a"
				g = chain(16, src, sink, proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
					if err := x.check([]flowruntime.Record{r}); err != nil {
						return err
					}
					emit(r)
					return nil
				}))
			case "call":
				failing = "a"
				g = chain(16, src, sink)
				g.Nodes = slices.Insert(g.Nodes, 1, &flowruntime.Node{Name: "a", Caller: caller{x}})
				g.Edges = []*flowruntime.Edge{{From: "src", To: "a", Capacity: 16}, {From: "a", To: "sink", Capacity: 16}}
			case "sink":
				failing = "sink"
				sink.fail = func(_ int, recs []flowruntime.Record) error { return x.check(recs) }
				g = chain(16, src, sink)
			case "source":
				failing = "src"
				src = &rejecting{}
				g = chain(16, src, sink)
			}
			for _, n := range g.Nodes {
				if n.Name == failing {
					n.OnError = pol
				}
			}
			if withDL {
				withDeadLetter(g, failing, dead)
			}
			ex := run(t, g, flowruntime.Options{BatchSize: 10})
			err := ex.Wait()

			written := sortedIDs(sink.records())
			var wantWritten []int64
			if spec, ok := strings.CutSuffix(tc.want.written, "-7"); ok && spec == "all" {
				wantWritten = without(ids(t, "all"), 7)
			} else {
				wantWritten = ids(t, tc.want.written)
			}
			if tc.want.fail != "" {
				want := fmt.Sprintf(":%s: ", tc.want.fail)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Wait = %v, want the run to fail at record %s", err, tc.want.fail)
				}
				if tc.want.upTo {
					for _, id := range written {
						if !slices.Contains(wantWritten, id) {
							t.Errorf("written %v: %d is not in %v", written, id, wantWritten)
						}
					}
				} else if !slices.Equal(written, wantWritten) {
					t.Errorf("written %v, want %v", written, wantWritten)
				}
				return
			}
			if err != nil {
				t.Fatalf("Wait = %v", err)
			}
			if !slices.Equal(written, wantWritten) {
				t.Errorf("written %v, want %v", written, wantWritten)
			}
			deadIDs := sortedIDs(dead.records())
			if want := ids(t, tc.want.dead); !slices.Equal(deadIDs, want) {
				t.Errorf("dead-lettered %v, want %v", deadIDs, want)
			}
			for _, r := range dead.records() {
				if r.Fields["error"] == nil || r.Fields["stage"] != failing {
					t.Errorf("dead letter %v lacks error or stage %q", r.Fields, failing)
				}
			}
			st, _ := ex.Stats().Node(failing)
			if st.Skipped != tc.want.skipped || st.DeadLettered != int64(len(deadIDs)) {
				t.Errorf("counters %+v, want skipped %d, dead-lettered %d", st, tc.want.skipped, len(deadIDs))
			}
			if st.Errors != tc.want.skipped+int64(len(deadIDs)) {
				t.Errorf("errors counted %d, want %d", st.Errors, tc.want.skipped+int64(len(deadIDs)))
			}
			if tc.fault == recovers && tc.where != "source" && st.Retries != 2 {
				t.Errorf("retries %d, want 2", st.Retries)
			}
			if s, ok := src.(*gen); ok && s.acked.Load() != 20 {
				t.Errorf("acked %d of 20", s.acked.Load())
			}
		})
	}
}
