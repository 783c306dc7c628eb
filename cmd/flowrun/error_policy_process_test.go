package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the built binary on the failures of issue 11 ("Errors
// isolate the record, not its batch"), as a user met them: what is
// written, what is dead-lettered, what the log says and the exit code.

// policyRun is a `flowrun run --log-format json p.flow` in dir; code and
// stderr are set once it ended.
type policyRun struct {
	dir    string
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan error
	code   int
	stderr string
}

// startPolicy writes files (name: content; p.flow among them) to a new
// directory and starts the pipeline there. It is killed when the test
// ends.
func startPolicy(t *testing.T, bin string, files map[string]string) *policyRun {
	t.Helper()
	r := &policyRun{dir: t.TempDir(), log: &lockedBuffer{}, exited: make(chan error, 1)}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.cmd = exec.Command(bin, "run", "--log-format", "json", "p.flow")
	r.cmd.Dir, r.cmd.Stderr = r.dir, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() { _ = r.cmd.Process.Kill() })
	return r
}

// wait waits for the run to end and sets code and stderr; a run still going
// after a minute fails the test.
func (r *policyRun) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.exited:
		r.code, r.stderr = exitCode(err), r.log.String()
	case <-time.After(time.Minute):
		t.Fatalf("flowrun run still going after a minute:\n%s", r.log)
	}
}

// runPolicy runs the pipeline of files (see startPolicy) to its end.
func runPolicy(t *testing.T, bin string, files map[string]string) *policyRun {
	t.Helper()
	r := startPolicy(t, bin, files)
	r.wait(t)
	return r
}

// records reads the JSON lines of a file the run wrote, none when the file
// is absent.
func (r *policyRun) records(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dir, name))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return parseJSONL(t, data)
}

// idsOf returns the integer field key of every record, sorted.
func idsOf(recs []map[string]any, key string) []int64 {
	ids := make([]int64, 0, len(recs))
	for _, r := range recs {
		f, _ := r[key].(float64)
		ids = append(ids, int64(f))
	}
	slices.Sort(ids)
	return ids
}

// span returns the ids from to to, inclusive, without those in but.
func span(from, to int64, but ...int64) []int64 {
	var ids []int64
	for id := from; id <= to; id++ {
		if !slices.Contains(but, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// orders returns n lines {"id":I,"price":3I,"qty":2}, I = 1..n, with qty
// 0 on line bad.
func orders(n, bad int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		qty := 2
		if i == bad {
			qty = 0
		}
		fmt.Fprintf(&b, "{\"id\":%d,\"price\":%d,\"qty\":%d}\n", i, 3*i, qty)
	}
	return b.String()
}

// totalFlow computes total = price / qty, +Inf where qty is 0, and writes
// it to out.jsonl with the sink options %[1]s; %[2]s is more stages.
const totalFlow = `pipeline "p" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  map "total" {
    from = in
    set { total = price / qty }
  }
  sink "out" {
    from = total
    kind = "file"
    path = "out.jsonl"
    %[1]s
  }
  %[2]s
}
`

// deadSink is the dead-letter sink of these pipelines.
const deadSink = `sink "dead" {
    kind = "file"
    path = "dead.jsonl"
  }`

// TestRunIsolatesFailingRecords: a record that fails is the only one that
// fails. A sink that cannot encode one record (+Inf) writes every other
// record of its batch once, and the failing one goes to the dead letter
// (which can write it) or fails the run naming the stage; a source's
// undecodable line under retry with a dead letter is dead-lettered.
func TestRunIsolatesFailingRecords(t *testing.T) {
	bin := buildFlowrun(t)
	tests := []struct {
		name, flow, input string
		wantCode          int
		wantOut, wantDead []int64 // ids
		// deadID is the field that numbers a dead letter, "id" when empty.
		deadID string
		// wantDeadFields are fields every dead letter has, by value.
		wantDeadFields map[string]any
		// wantFailure is what the error of a failed run says.
		wantFailure []string
	}{
		{
			name:  "encode error dead-lettered",
			flow:  fmt.Sprintf(totalFlow, "on_error = \"dead_letter\"\n    dead_letter = dead", deadSink),
			input: orders(1000, 500), wantOut: span(1, 1000, 500), wantDead: []int64{500},
			// The number no JSON encoder takes is written as text; the
			// position is the byte offset of line 500.
			wantDeadFields: map[string]any{"stage": "out", "total": "+Inf", "qty": 0.0,
				"origin": map[string]any{"source": "in", "file": "in.jsonl", "position": len(orders(499, 0))}},
		},
		{
			// 20 lines are one batch: its 19 good records are written
			// around the failing one before the run fails.
			name:  "encode error under the default policy",
			flow:  fmt.Sprintf(totalFlow, "", ""),
			input: orders(20, 10), wantCode: 1, wantOut: span(1, 20, 10),
			wantFailure: []string{`stage "out"`, "encode +Inf as JSON"},
		},
		{
			name: "undecodable line under retry with a dead letter",
			flow: `pipeline "p" {
  source "in" {
    kind        = "file"
    path        = "in.jsonl"
    codec       = "json"
    on_error    = "retry"
    dead_letter = dead
  }
  sink "out" {
    from = in
    kind = "file"
    path = "out.jsonl"
  }
  ` + deadSink + `
}
`,
			// A source's dead letter is the line, numbered by line_number.
			input: numbered(100, 40, "{oops}"), wantOut: span(1, 100, 40), wantDead: []int64{40}, deadID: "line_number",
			wantDeadFields: map[string]any{"stage": "in", "line": "{oops}", "file": "in.jsonl"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runPolicy(t, bin, map[string]string{"p.flow": tt.flow, "in.jsonl": tt.input})
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.wantCode, r.stderr)
			}
			if got := idsOf(r.records(t, "out.jsonl"), "id"); !slices.Equal(got, tt.wantOut) {
				t.Errorf("out.jsonl holds ids %v,\nwant %v", got, tt.wantOut)
			}
			dead := r.records(t, "dead.jsonl")
			deadID := cmp.Or(tt.deadID, "id")
			if got := idsOf(dead, deadID); !slices.Equal(got, tt.wantDead) {
				t.Errorf("dead.jsonl holds ids %v, want %v", got, tt.wantDead)
			}
			for _, d := range dead {
				if msg, _ := d["error"].(string); msg == "" {
					t.Errorf("dead letter without an error: %v", d)
				}
				for k, want := range tt.wantDeadFields {
					if got := d[k]; fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("dead letter %s = %v, want %v", k, got, want)
					}
				}
			}
			if len(tt.wantFailure) == 0 {
				return
			}
			failed, ok := findLog(r.stderr, "run failed")
			if !ok {
				t.Fatalf("no run failed line in the log:\n%s", r.stderr)
			}
			for _, want := range tt.wantFailure {
				if msg, _ := failed["error"].(string); !strings.Contains(msg, want) {
					t.Errorf("the run failed with %q, which does not say %q", msg, want)
				}
			}
		})
	}
}

// target is an HTTP sink's destination: it answers each request with the
// status status gives it (0 closes the connection unanswered) and keeps the
// seq of every record of the requests it answered 2xx.
type target struct {
	URL    string
	status func(since time.Duration, failed int) int

	mu       sync.Mutex
	first    time.Time
	failed   int
	accepted []int64
}

// newTarget starts a target on 127.0.0.1, closed when the test ends.
// status is given the time since the first request and the number of
// requests failed so far.
func newTarget(t *testing.T, status func(since time.Duration, failed int) int) *target {
	tg := &target{status: status}
	srv := httptest.NewServer(tg)
	t.Cleanup(srv.Close)
	tg.URL = srv.URL
	return tg
}

func (tg *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var recs []struct{ Seq int64 }
	if err == nil {
		err = json.Unmarshal(body, &recs)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tg.mu.Lock()
	if tg.first.IsZero() {
		tg.first = time.Now()
	}
	status := tg.status(time.Since(tg.first), tg.failed)
	if status/100 == 2 {
		for _, rec := range recs {
			tg.accepted = append(tg.accepted, rec.Seq)
		}
	} else {
		tg.failed++
	}
	tg.mu.Unlock()
	if status == 0 {
		panic(http.ErrAbortHandler) // closes the connection unanswered
	}
	w.WriteHeader(status)
}

// results returns the seqs accepted, sorted, and the requests failed.
func (tg *target) results() (accepted []int64, failed int) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	accepted = slices.Clone(tg.accepted)
	slices.Sort(accepted)
	return accepted, tg.failed
}

// httpSinkFlow generates 500 records into an http sink at %[1]s with the
// sink options %[2]s; %[3]s is more stages.
const httpSinkFlow = `pipeline "p" {
  source "gen" {
    kind  = "generate"
    count = 500
  }
  sink "out" {
    from = gen
    kind = "http"
    url  = %[1]q
    %[2]s
  }
  %[3]s
}
`

// TestRunHTTPSinkRetriesBeforeGivingUp: a transient failure of the target
// is retried, under dead_letter too, and an outage of 4 s (longer than the
// 1.5 s the default retries once lasted in all) is waited out by the
// default policy: the run succeeds, every record arrives once and nothing
// is dead-lettered.
func TestRunHTTPSinkRetriesBeforeGivingUp(t *testing.T) {
	bin := buildFlowrun(t)
	const outage = 4 * time.Second
	tests := []struct {
		name, options, stages string
		status                func(since time.Duration, failed int) int
		wantFailed            func(n int) bool
	}{
		{
			name:    "dead_letter with 3 tries, 500 once",
			options: "on_error = \"dead_letter\"\n    dead_letter = dead\n    retry_attempts = 3",
			stages:  deadSink,
			status: func(_ time.Duration, failed int) int {
				if failed == 0 {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			},
			wantFailed: func(n int) bool { return n == 1 },
		},
		{
			name: "default policy, 500 for 4s",
			status: func(since time.Duration, _ int) int {
				if since < outage {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			},
			wantFailed: func(n int) bool { return n > 1 },
		},
		{
			name: "default policy, connections closed for 4s",
			status: func(since time.Duration, _ int) int {
				if since < outage {
					return 0
				}
				return http.StatusOK
			},
			wantFailed: func(n int) bool { return n > 1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t, tt.status)
			r := runPolicy(t, bin, map[string]string{"p.flow": fmt.Sprintf(httpSinkFlow, tg.URL, tt.options, tt.stages)})
			if r.code != 0 {
				t.Errorf("exit %d, want 0\n%s", r.code, r.stderr)
			}
			accepted, failed := tg.results()
			if want := span(0, 499); !slices.Equal(accepted, want) {
				t.Errorf("the target accepted %d records %v, want seq 0-499 once each", len(accepted), accepted)
			}
			if !tt.wantFailed(failed) {
				t.Errorf("the target failed %d requests", failed)
			}
			if dead := r.records(t, "dead.jsonl"); len(dead) > 0 {
				t.Errorf("%d records dead-lettered, want none: %v", len(dead), dead[0])
			}
			retrying, ok := findLog(r.stderr, "retrying")
			if !ok || retrying.level() != "warn" || retrying["stage"] != "out" {
				t.Errorf("retries logged as %v, want a warn line naming stage out\n%s", retrying, r.stderr)
			}
		})
	}
}

// TestRunLossyBranchCountsDrops: a lossy branch (when_full =
// "drop_newest") into a slow throttle drops most of 8000 records. The
// drops are logged at warn, naming the branch, and the final `pipeline
// finished` line counts them: exactly 8000 minus what reached the branch's
// sink. The lossless branch gets every record.
func TestRunLossyBranchCountsDrops(t *testing.T) {
	bin := buildFlowrun(t)
	r := runPolicy(t, bin, map[string]string{"p.flow": `pipeline "p" {
  source "gen" {
    kind  = "generate"
    count = 8000
  }
  sink "all" {
    from = gen
    kind = "file"
    path = "all.jsonl"
  }
  throttle "slow" {
    from          = gen
    rate          = 100
    per           = "1s"
    edge_capacity = 16
    when_full     = "drop_newest"
  }
  sink "dash" {
    from = slow
    kind = "file"
    path = "dash.jsonl"
  }
}
`})
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.code, r.stderr)
	}
	if n := len(r.records(t, "all.jsonl")); n != 8000 {
		t.Errorf("the lossless branch wrote %d records, want 8000", n)
	}
	arrived := int64(len(r.records(t, "dash.jsonl")))
	dropped := 8000 - arrived
	if dropped == 0 {
		t.Fatalf("the lossy branch dropped nothing: no drops to count\n%s", r.stderr)
	}

	var warned bool
	for _, line := range strings.Split(r.stderr, "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.level() == "warn" &&
			strings.Contains(e.message(), "dropped") && e["to"] == "slow" {
			warned = true
			if total := e.int("dropped_total"); total <= 0 || total > dropped {
				t.Errorf("a warn line counts %d dropped in all; %d were", total, dropped)
			}
		}
	}
	if !warned {
		t.Errorf("no warn line about the records dropped on the way to slow:\n%s", r.stderr)
	}

	finished, ok := findLog(r.stderr, "pipeline finished")
	if !ok {
		t.Fatalf("no pipeline finished line:\n%s", r.stderr)
	}
	// The count is the lossy branch's.
	var counts []string
	for key := range finished {
		if strings.HasSuffix(key, ".dropped") {
			counts = append(counts, fmt.Sprintf("%s=%d", key, finished.int(key)))
		}
	}
	if want := fmt.Sprintf("slow.dropped=%d", dropped); len(counts) != 1 || counts[0] != want {
		t.Errorf("pipeline finished counts drops as %v, want %s\n%s", counts, want, r.stderr)
	}
}

// TestRunHTTPSourceCountsRefusedRequests: the http source answers a
// malformed body 400 and one over max_body_bytes 413, and both its own last
// log line and the pipeline's final one count those answers (rejected
// counts the records of requests refused once decoded, answered 429 or 503,
// so it stays 0 here).
func TestRunHTTPSourceCountsRefusedRequests(t *testing.T) {
	bin := buildFlowrun(t)
	r := startPolicy(t, bin, map[string]string{"p.flow": `pipeline "p" {
  source "in" {
    kind           = "http"
    listen         = "127.0.0.1:0"
    max_body_bytes = 64
  }
  sink "out" {
    from = in
    kind = "file"
    path = "out.jsonl"
  }
}
`})
	var addr string
	eventually(t, "the ingest server to listen", r.log, func() bool {
		e, ok := findLog(r.log.String(), "listening")
		addr, _ = e["addr"].(string)
		return ok && addr != ""
	})
	requests := []struct {
		body   string
		status int
	}{
		{`{"id":1}`, 200},
		{"{\"id\":2}\n{\"id\":3}\n", 200},
		{`[{"id":4},{"id":5}]`, 200},
		{`{"id": }`, 400},
		{`[1, 2]`, 400},
		{"{\"id\":6}\nnot json\n", 400},
		{`{"s":"` + strings.Repeat("x", 100) + `"}`, 413},
		{`[` + strings.Repeat(`{"id":7},`, 20) + `{"id":7}]`, 413},
	}
	answered := map[int]int64{}
	for _, req := range requests {
		resp, err := http.Post("http://"+addr+"/ingest", "application/json", strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != req.status {
			t.Errorf("%q answered %d, want %d", req.body, resp.StatusCode, req.status)
		}
		answered[resp.StatusCode]++
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r.wait(t); r.code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", r.code, r.stderr)
	}
	log := r.stderr
	stopped, ok := findLog(log, "ingest server stopped")
	if !ok {
		t.Fatalf("no ingest server stopped line:\n%s", log)
	}
	want := map[string]int64{
		"accepted": 5, "rejected": 0,
		"answered_200": answered[200], "answered_400": answered[400], "answered_413": answered[413],
	}
	for key, n := range want {
		if _, logged := stopped[key]; !logged || stopped.int(key) != n {
			t.Errorf("ingest server stopped: %s=%v, want %d\n%v", key, stopped[key], n, stopped)
		}
	}
	// The final line lists the same counts, those that are not zero, under
	// the source's name.
	finished, ok := findLog(log, "pipeline finished")
	if !ok {
		t.Fatalf("no pipeline finished line:\n%s", log)
	}
	for key, n := range want {
		if got := finished.int("in." + key); got != n {
			t.Errorf("pipeline finished: in.%s=%v, want %d\n%v", key, finished["in."+key], n, finished)
		}
	}
	if got := idsOf(r.records(t, "out.jsonl"), "id"); !slices.Equal(got, span(1, 5)) {
		t.Errorf("out.jsonl holds ids %v, want 1-5", got)
	}
}
