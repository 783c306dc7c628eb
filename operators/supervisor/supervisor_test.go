package supervisor_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/source"
	"github.com/flowrun/flowrun/operators/supervisor"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// stopped supervisor (and a closed watcher) leaves none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log output the test reads while the supervisor writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// count returns how many lines of the log contain sub.
func (s *syncBuffer) count(sub string) int { return strings.Count(s.String(), sub) }

// loader loads and plans every .flow file of dir, as `flowrun run DIR`
// does; invalid files are reported to log and give no plan.
func loader(dir string, log *syncBuffer) func() (*planner.Plan, bool) {
	return func() (*planner.Plan, bool) {
		names, err := filepath.Glob(filepath.Join(dir, "*.flow"))
		if err != nil {
			fmt.Fprintf(log, "load: %v\n", err)
			return nil, false
		}
		sort.Strings(names)
		sources := map[string][]byte{}
		var files []*ast.File
		var ds diag.Diagnostics
		for _, n := range names {
			src, err := os.ReadFile(n)
			if err != nil {
				fmt.Fprintf(log, "load: %v\n", err)
				return nil, false
			}
			sources[n] = src
			f, fds := lang.Parse(n, src)
			ds = append(ds, fds...)
			files = append(files, f)
		}
		plan, pds := planner.Build(files, all.Registry(), nil)
		ds = append(ds, pds...)
		if ds.HasErrors() {
			_ = diag.WriteText(log, ds, sources)
			return nil, false
		}
		return plan, true
	}
}

// newSupervisor returns a supervisor over dir logging to a buffer, and the
// buffer.
func newSupervisor(t *testing.T, dir string) (*supervisor.Supervisor, *syncBuffer) {
	t.Helper()
	return newStdinSupervisor(t, dir, nil)
}

// newStdinSupervisor is newSupervisor with stdin as the standard input of
// the pipelines.
func newStdinSupervisor(t *testing.T, dir string, stdin io.Reader) (*supervisor.Supervisor, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	sup := supervisor.New(supervisor.Config{
		Registry: all.Registry(),
		Logger:   hclog.New(&hclog.LoggerOptions{Name: "flowrun", Output: logs, Level: hclog.Info}),
		Stdin:    stdin,
		Stdout:   &syncBuffer{},
		Load:     loader(dir, logs),
	})
	return sup, logs
}

// writeAtomic saves a file the way many editors do: write a temporary file
// beside it, then rename it over the old one.
func writeAtomic(t *testing.T, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every millisecond until it holds, failing the test
// after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// outLine is one record of a JSON lines output.
type outLine map[string]any

// tail reads the complete lines a file sink has written so far.
type tail struct {
	path  string
	off   int64
	part  []byte
	lines []outLine
}

// poll reads what was appended since the last poll and returns the new
// records.
func (tl *tail) poll(t *testing.T) []outLine {
	t.Helper()
	f, err := os.Open(tl.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	var fresh []outLine
	for {
		n, err := f.ReadAt(buf, tl.off)
		tl.off += int64(n)
		tl.part = append(tl.part, buf[:n]...)
		if n == 0 || err != nil {
			break
		}
	}
	for {
		i := bytes.IndexByte(tl.part, '\n')
		if i < 0 {
			break
		}
		var rec outLine
		if err := json.Unmarshal(tl.part[:i], &rec); err != nil {
			t.Fatalf("output line %q: %v", tl.part[:i], err)
		}
		tl.part = tl.part[i+1:]
		tl.lines = append(tl.lines, rec)
		fresh = append(fresh, rec)
	}
	return fresh
}

// appender writes numbered lines to a file until stopped.
type appender struct {
	stop chan struct{}
	done chan struct{}
	n    int
}

func startAppender(t *testing.T, path string, every time.Duration) *appender {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	a := &appender{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer f.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-tick.C:
				if _, err := fmt.Fprintf(f, "%d\n", a.n); err != nil {
					return
				}
				a.n++
			}
		}
	}()
	return a
}

// halt stops the appender and returns how many lines it wrote.
func (a *appender) halt() int {
	close(a.stop)
	<-a.done
	return a.n
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// checkSequence checks that recs hold line "0" .. "n-1" exactly once each,
// in order, each with v set by one version, and returns the number of times
// the version changes from one record to the next.
func checkSequence(t *testing.T, recs []outLine, n int) (switches int) {
	t.Helper()
	if len(recs) != n {
		t.Errorf("the output holds %d records, the input %d lines", len(recs), n)
	}
	for i, r := range recs {
		if r["line"] != strconv.Itoa(i) {
			t.Fatalf("output record %d is %v, want line %d: a record was lost or repeated", i, r, i)
		}
		v, _ := r["v"].(string)
		if v != "A" && v != "B" {
			t.Fatalf("output record %d is %v: not transformed by exactly one version", i, r)
		}
		if i > 0 && recs[i-1]["v"] != v {
			switches++
		}
	}
	return switches
}

const followFlow = `pipeline "follow" {
  edge_capacity = 16

  source "in" {
    kind          = "file"
    path          = "in.log"
    follow        = true
    poll_interval = "2ms"
  }
  map "version" {
    from = in
    set { v = %q }
  }
  sink "out" {
    from = version
    kind = "file"
    path = "out.jsonl"
  }
}
`

// invalidFlow has an unknown function: planning fails.
const invalidFlow = `pipeline "follow" {
  source "in" {
    kind   = "file"
    path   = "in.log"
    follow = true
  }
  map "version" {
    from = in
    set { v = lowr("X") }
  }
  sink "out" {
    from = version
    kind = "file"
    path = "out.jsonl"
  }
}
`

const steadyFlow = `pipeline "steady" {
  source "ticks" {
    kind     = "generate"
    interval = "1ms"
  }
  sink "none" {
    from = ticks
    kind = "discard"
  }
}
`

// TestWatchHandsOverWithoutLossOrRepeat rewrites a pipeline 50 times,
// alternating its map between two versions, with invalid edits among them,
// while its followed input grows continuously; a real watcher on the
// directory drives the reloads. The output must hold every input line
// exactly once, in order, each transformed by one version; the invalid
// edits must change nothing; the unchanged pipeline beside it must never
// restart. It logs the handover latency from save to the new version's
// first record.
func TestWatchHandsOverWithoutLossOrRepeat(t *testing.T) {
	latencies := handovers(t, true)
	t.Logf("watch: handover latency from save to the new version's first record over %d reloads: p50 %s, p99 %s, max %s",
		len(latencies), percentile(latencies, 50), percentile(latencies, 99), percentile(latencies, 100))
}

// TestReloadHandsOverWithoutLossOrRepeat is the same through Reload, the
// entry point the SIGHUP handler of flowrun run calls, with no watcher.
func TestReloadHandsOverWithoutLossOrRepeat(t *testing.T) {
	latencies := handovers(t, false)
	t.Logf("reload: handover latency from save to the new version's first record over %d reloads: p50 %s, p99 %s, max %s",
		len(latencies), percentile(latencies, 50), percentile(latencies, 99), percentile(latencies, 100))
}

// handovers runs the 50 edits, with a watcher or calling Reload after each
// save, checks the output and returns the latencies.
func handovers(t *testing.T, watch bool) []time.Duration {
	dir := t.TempDir()
	flow := filepath.Join(dir, "follow.flow")
	writeFile(t, flow, fmt.Sprintf(followFlow, "A"))
	writeFile(t, filepath.Join(dir, "steady.flow"), steadyFlow)
	writeFile(t, filepath.Join(dir, "in.log"), "")

	sup, logs := newSupervisor(t, dir)
	plan, ok := loader(dir, logs)()
	if !ok {
		t.Fatalf("initial plan:\n%s", logs)
	}
	if err := sup.Start(plan); err != nil {
		t.Fatal(err)
	}
	reload := func() {}
	var w *supervisor.Watcher
	var followed <-chan struct{}
	if watch {
		var err error
		if w, err = supervisor.NewWatcher([]string{dir}, 0, nil); err != nil {
			t.Fatal(err)
		}
		followed = sup.Follow(w)
	} else {
		reload = func() {
			if err := sup.Reload(); err != nil {
				t.Fatal(err)
			}
		}
	}
	app := startAppender(t, filepath.Join(dir, "in.log"), 500*time.Microsecond)

	out := &tail{path: filepath.Join(dir, "out.jsonl")}
	steadyOut := func() int64 {
		st, ok := sup.Stats("steady")
		if !ok {
			t.Fatal("the steady pipeline is not running")
		}
		n, _ := st.Node("ticks")
		return n.Out
	}
	lastSteady := steadyOut()
	version := "A"
	waitFor(t, 10*time.Second, "the first version's first record", func() bool {
		return len(out.poll(t)) > 0
	})
	var latencies []time.Duration
	valid, invalid := 0, 0
	for i := range 50 {
		if i%5 == 2 {
			// An invalid edit: reported, nothing else happens.
			rejected := logs.count("reload rejected")
			changed := logs.count("pipeline changed")
			writeAtomic(t, flow, invalidFlow)
			reload()
			invalid++
			waitFor(t, 5*time.Second, "the invalid edit to be rejected", func() bool {
				return logs.count("reload rejected") > rejected
			})
			if got := logs.count("pipeline changed"); got != changed {
				t.Fatalf("an invalid edit changed a pipeline:\n%s", logs)
			}
			for _, r := range out.poll(t) {
				if r["v"] != version {
					t.Fatalf("after an invalid edit a record has v = %v, want %s", r["v"], version)
				}
			}
		}
		if version == "A" {
			version = "B"
		} else {
			version = "A"
		}
		save := writeAtomic
		if i%2 == 1 {
			save = writeFile // an in-place write, as some editors do
		}
		saved := time.Now()
		save(t, flow, fmt.Sprintf(followFlow, version))
		reload()
		valid++
		waitFor(t, 10*time.Second, "the new version's first record", func() bool {
			for _, r := range out.poll(t) {
				if r["v"] == version {
					return true
				}
			}
			return false
		})
		latencies = append(latencies, time.Since(saved))
		// The new version runs before the reload is logged.
		waitFor(t, 5*time.Second, "the handover to be logged", func() bool {
			return logs.count("pipeline changed") == valid
		})

		now := steadyOut()
		if now < lastSteady {
			t.Fatalf("the unchanged pipeline's counter went from %d to %d: it was restarted", lastSteady, now)
		}
		lastSteady = now
	}
	n := app.halt()
	waitFor(t, 10*time.Second, "every input line in the output", func() bool {
		out.poll(t)
		return len(out.lines) >= n
	})

	beforeStop := logs.String()
	sup.Stop()
	if err := sup.Wait(); err != nil {
		t.Fatalf("pipelines failed: %v\n%s", err, logs)
	}
	if w != nil {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		<-followed
	}
	out.poll(t)

	switches := checkSequence(t, out.lines, n)
	if switches != valid {
		t.Errorf("the version changed %d times in the output, want %d (one per valid edit); runs: %s", switches, valid, runs(out.lines))
	}
	if got := logs.count("pipeline changed"); got != valid {
		t.Errorf("%d handovers logged, want %d", got, valid)
	}
	if got := logs.count("reload rejected"); got != invalid {
		t.Errorf("%d rejected reloads logged, want %d", got, invalid)
	}
	if got, want := logs.count("pipeline unchanged"), logs.count("pipeline changed"); got < want {
		t.Errorf("the steady pipeline was reported unchanged %d times over %d reloads", got, want)
	}
	if strings.Contains(beforeStop, "pipeline finished") {
		t.Errorf("a pipeline ended during reloads:\n%s", beforeStop)
	}
	if lastSteady == 0 {
		t.Error("the steady pipeline generated nothing")
	}
	took := handoverTimes(t, logs.String())
	t.Logf("%d input lines, %d valid and %d invalid edits; the handover itself (stop the old version, drain, start the new one): p50 %s, p99 %s",
		n, valid, invalid, percentile(took, 50), percentile(took, 99))
	return latencies
}

// handoverTimes reads the took= of every "pipeline changed" log line.
func handoverTimes(t *testing.T, log string) []time.Duration {
	t.Helper()
	var out []time.Duration
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "pipeline changed") {
			continue
		}
		_, rest, ok := strings.Cut(line, "took=")
		if !ok {
			t.Fatalf("no took= in %q", line)
		}
		d, err := time.ParseDuration(strings.Trim(strings.Fields(rest)[0], `"`))
		if err != nil {
			t.Fatalf("took= in %q: %v", line, err)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		t.Fatal("no handover logged")
	}
	return out
}

// runs renders the versions of recs as runs: "A×3 B×5 ...".
func runs(recs []outLine) string {
	var b strings.Builder
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j]["v"] == recs[i]["v"] {
			j++
		}
		fmt.Fprintf(&b, "%v×%d(from %v) ", recs[i]["v"], j-i, recs[i]["line"])
		i = j
	}
	return b.String()
}

const pressureFlow = `pipeline "pressure" {
  edge_capacity = 16

  %s
  map "version" {
    from = in
    set { v = %q }
  }
  sink "out" {
    from = version
    kind = "file"
    path = "out.jsonl"
  }
}
`

// TestHandoverUnderBackpressure hands a pipeline over again and again while
// its source is held back by small edges, so that every stop finds the
// source in the middle of sending a batch: the output must still hold every
// record exactly once, in order.
func TestHandoverUnderBackpressure(t *testing.T) {
	const n = 60000
	tests := []struct {
		name   string
		source string
		key    string
		want   func(i int) any
	}{
		{"file", `source "in" {
    kind = "file"
    path = "in.log"
  }`, "line", func(i int) any { return strconv.Itoa(i) }},
		{"generate", fmt.Sprintf(`source "in" {
    kind  = "generate"
    count = %d
  }`, n), "seq", func(i int) any { return float64(i) }},
		{"stdin", `source "in" {
    kind = "stdin"
  }`, "line", func(i int) any { return strconv.Itoa(i) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var in strings.Builder
			for i := range n {
				fmt.Fprintf(&in, "%d\n", i)
			}
			writeFile(t, filepath.Join(dir, "in.log"), in.String())
			flow := filepath.Join(dir, "pressure.flow")
			writeFile(t, flow, fmt.Sprintf(pressureFlow, tt.source, "A"))
			var stdin io.Reader
			if tt.name == "stdin" {
				stdin = source.NewFeed(strings.NewReader(in.String()))
			}
			sup, logs := newStdinSupervisor(t, dir, stdin)
			plan, ok := loader(dir, logs)()
			if !ok {
				t.Fatalf("plan:\n%s", logs)
			}
			if err := sup.Start(plan); err != nil {
				t.Fatal(err)
			}
			out := &tail{path: filepath.Join(dir, "out.jsonl")}
			version := "A"
			for i := 0; i < 40; i++ {
				seen := len(out.lines)
				waitFor(t, 10*time.Second, "progress", func() bool {
					out.poll(t)
					return len(out.lines) > seen || len(out.lines) == n
				})
				if version == "A" {
					version = "B"
				} else {
					version = "A"
				}
				writeFile(t, flow, fmt.Sprintf(pressureFlow, tt.source, version))
				if err := sup.Reload(); err != nil {
					t.Fatal(err)
				}
			}
			<-sup.Idle()
			if err := sup.Wait(); err != nil {
				t.Fatalf("pipeline failed: %v\n%s", err, logs)
			}
			out.poll(t)
			if len(out.lines) != n {
				t.Errorf("the output holds %d records, want %d", len(out.lines), n)
			}
			for i, r := range out.lines {
				if r[tt.key] != tt.want(i) {
					t.Fatalf("output record %d is %v, want %s %v: a record was lost or repeated", i, r, tt.key, tt.want(i))
				}
			}
			if got := logs.count("pipeline changed"); got != 40 {
				t.Errorf("%d handovers logged, want 40", got)
			}
		})
	}
}

const tickFlow = `pipeline %q {
  source "ticks" {
    kind     = "generate"
    interval = "1ms"
  }
  sink "out" {
    from = ticks
    kind = "file"
    path = %q
  }
}
`

// TestWatchDirectoryAddsAndRemoves watches a directory: a new .flow file
// starts its pipeline, a deleted one drains and stops its pipeline, and the
// pipeline nobody touched keeps running.
func TestWatchDirectoryAddsAndRemoves(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.flow"), fmt.Sprintf(tickFlow, "a", "a.jsonl"))
	writeFile(t, filepath.Join(dir, "keep.flow"), fmt.Sprintf(tickFlow, "keep", "keep.jsonl"))
	sup, logs := newSupervisor(t, dir)
	plan, ok := loader(dir, logs)()
	if !ok {
		t.Fatalf("plan:\n%s", logs)
	}
	if err := sup.Start(plan); err != nil {
		t.Fatal(err)
	}
	w, err := supervisor.NewWatcher([]string{dir}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	followed := sup.Follow(w)
	aOut := &tail{path: filepath.Join(dir, "a.jsonl")}
	bOut := &tail{path: filepath.Join(dir, "b.jsonl")}
	waitFor(t, 5*time.Second, "a to write", func() bool { return len(aOut.poll(t)) > 0 })
	var keepBefore flowruntime.Stats
	waitFor(t, 5*time.Second, "keep to generate", func() bool {
		keepBefore, _ = sup.Stats("keep")
		n, _ := keepBefore.Node("ticks")
		return n.Out > 0
	})

	writeAtomic(t, filepath.Join(dir, "b.flow"), fmt.Sprintf(tickFlow, "b", "b.jsonl"))
	waitFor(t, 5*time.Second, "the new file's pipeline to write", func() bool { return len(bOut.poll(t)) > 0 })
	// The reload records b once its Apply ends, just after b starts.
	waitFor(t, 5*time.Second, "b to be listed", func() bool {
		return strings.Join(sup.Pipelines(), " ") == "a b keep"
	})

	if err := os.Remove(filepath.Join(dir, "a.flow")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the deleted file's pipeline to stop", func() bool {
		return strings.Join(sup.Pipelines(), " ") == "b keep"
	})
	aOut.poll(t)
	stoppedAt := len(aOut.lines)
	time.Sleep(20 * time.Millisecond)
	if aOut.poll(t); len(aOut.lines) != stoppedAt {
		t.Errorf("a wrote %d more records after it was removed", len(aOut.lines)-stoppedAt)
	}
	for i, r := range aOut.lines {
		if r["seq"] != float64(i) {
			t.Fatalf("a's output record %d is %v: the drain lost or repeated a record", i, r)
		}
	}
	keepAfter, _ := sup.Stats("keep")
	k0, _ := keepBefore.Node("ticks")
	if k1, _ := keepAfter.Node("ticks"); k1.Out <= k0.Out {
		t.Errorf("keep's counter went from %d to %d across the reloads: it was restarted or stalled", k0.Out, k1.Out)
	}
	for _, want := range []string{"pipeline added: started: pipeline=b", "pipeline removed: drained and stopped: pipeline=a", "pipeline unchanged: left untouched: pipeline=keep"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}

	sup.Stop()
	if err := sup.Wait(); err != nil {
		t.Fatalf("pipelines failed: %v\n%s", err, logs)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	<-followed
}
