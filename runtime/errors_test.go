package runtime_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/hashicorp/go-hclog"
)

// failing fails records whose i%10 == 3 for their first `times` attempts
// with a transient error (always, with a permanent one, when times < 0).
func failing(times int) flowruntime.Processor {
	var mu sync.Mutex
	tries := map[int64]int{}
	return proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
		i := field(r)
		if i%10 == 3 {
			mu.Lock()
			tries[i]++
			n := tries[i]
			mu.Unlock()
			if times < 0 {
				return onerror.Permanent(errBoom)
			}
			if n <= times {
				return errBoom
			}
		}
		emit(r)
		return nil
	})
}

func withDeadLetter(g *flowruntime.Graph, from string, dead flowruntime.Sink) {
	g.Nodes = append(g.Nodes, &flowruntime.Node{Name: "dead", Sink: dead})
	g.Edges = append(g.Edges, &flowruntime.Edge{From: from, To: "dead", Capacity: 16, DeadLetter: true})
}

func TestProcessorErrorPolicies(t *testing.T) {
	fast := onerror.Policy{Attempts: 3, Backoff: time.Microsecond, MaxBackoff: time.Microsecond}
	policy := func(mode string) onerror.Policy { p := fast; p.Mode, _ = onerror.ParseMode(mode); return p }
	for _, tc := range []struct {
		name        string
		policy      onerror.Policy
		failTimes   int
		deadLetter  bool
		wantErr     string
		wantSink    int
		wantDead    int
		wantSkipped int64
		wantRetries int64
		wantLogs    int
	}{
		{name: "stop", policy: policy("stop"), failTimes: -1,
			wantErr: `pipeline "p", stage "a", record gen:3: boom`},
		{name: "default is stop", policy: onerror.Policy{}, failTimes: -1,
			wantErr: `pipeline "p", stage "a", record gen:3: boom`},
		{name: "skip", policy: policy("skip"), failTimes: -1,
			wantSink: 90, wantSkipped: 10, wantLogs: 10},
		{name: "retry succeeds", policy: policy("retry"), failTimes: 2,
			wantSink: 100, wantRetries: 20, wantLogs: 20},
		{name: "retry then dead letter", policy: policy("retry"), failTimes: -1, deadLetter: true,
			wantSink: 90, wantDead: 10, wantLogs: 10},
		{name: "retry then stop", policy: policy("retry"), failTimes: -1,
			wantErr: `pipeline "p", stage "a", record gen:3: boom`},
		{name: "dead letter", policy: policy("dead_letter"), failTimes: -1, deadLetter: true,
			wantSink: 90, wantDead: 10, wantLogs: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true, Level: hclog.Warn})
			src := &gen{count: 100, per: 10}
			sink, dead := &collect{}, &collect{}
			g := chain(16, src, sink, failing(tc.failTimes))
			g.Nodes[1].OnError = tc.policy
			if tc.deadLetter {
				withDeadLetter(g, "a", dead)
			}
			ex := run(t, g, flowruntime.Options{Logger: logger})
			err := ex.Wait()
			if tc.wantErr != "" {
				var se *flowruntime.StageError
				if err == nil || err.Error() != tc.wantErr || !errors.As(err, &se) || !errors.Is(err, errBoom) {
					t.Fatalf("Wait = %v, want %q", err, tc.wantErr)
				}
				if se.Stage != "a" || se.Source != "gen" || se.Position != 3 {
					t.Errorf("StageError = %+v", se)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := sink.len(); n != tc.wantSink {
				t.Errorf("sink got %d, want %d", n, tc.wantSink)
			}
			d := dead.records()
			if len(d) != tc.wantDead {
				t.Errorf("dead letters %d, want %d", len(d), tc.wantDead)
			}
			for _, r := range d {
				if field(r)%10 != 3 || r.Fields["error"] != "boom" || r.Fields["stage"] != "a" {
					t.Errorf("dead letter %v", r.Fields)
				}
			}
			st, _ := ex.Stats().Node("a")
			if st.Skipped != tc.wantSkipped || st.Retries != tc.wantRetries || st.DeadLettered != int64(tc.wantDead) {
				t.Errorf("counters %+v", st)
			}
			if src.acked.Load() != 100 {
				t.Errorf("acked %d of 100", src.acked.Load())
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if tc.wantLogs == 0 {
				if logs.Len() != 0 {
					t.Errorf("unexpected logs: %s", logs.String())
				}
				return
			}
			if len(lines) != tc.wantLogs {
				t.Fatalf("%d log lines, want %d:\n%s", len(lines), tc.wantLogs, logs.String())
			}
			var entry map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
				t.Fatal(err)
			}
			msg := "record skipped"
			if tc.wantRetries > 0 {
				msg = "retrying"
			}
			if tc.wantDead > 0 {
				msg = "record dead-lettered"
			}
			want := map[string]any{"@level": "warn", "@message": msg, "pipeline": "p", "stage": "a", "error": "boom"}
			if tc.wantRetries == 0 {
				want["source"], want["position"] = "gen", float64(3)
			}
			for k, v := range want {
				if entry[k] != v {
					t.Errorf("log field %s = %v, want %v (%s)", k, entry[k], v, lines[0])
				}
			}
		})
	}
}
