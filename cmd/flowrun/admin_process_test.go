package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowrun/flowrun/engine/admin"
)

// These tests run the built binary with --admin 127.0.0.1:0 and read what
// its admin server serves while the pipelines run: Prometheus metrics
// checked against what the sinks wrote, readiness, the bottleneck named by
// /api/v1/pipelines, and records tapped at a stage.

// adminRun is a running `flowrun run --admin 127.0.0.1:0 --log-format json`.
type adminRun struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	// done is closed once the process has exited; err is then Wait's.
	done chan struct{}
	err  error
	url  string
}

// startAdmin starts flowrun run in dir with args after the admin flags and
// waits until the admin server has logged its address.
func startAdmin(t *testing.T, bin, dir string, args ...string) *adminRun {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"run", "--log-format", "json", "--admin", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	r := &adminRun{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
	})
	eventually(t, "the admin server's address", r.stderr, func() bool {
		e, ok := findLog(r.stderr.String(), "admin server listening")
		if ok {
			r.url = "http://" + e["addr"].(string)
		}
		return ok
	})
	if !strings.HasPrefix(r.url, "http://127.0.0.1:") || strings.HasSuffix(r.url, ":0") {
		t.Fatalf("admin server at %s, want 127.0.0.1 and a real port", r.url)
	}
	return r
}

// get fetches path from the admin server.
func (r *adminRun) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, r.stderr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// pipelines fetches /api/v1/pipelines.
func (r *adminRun) pipelines(t *testing.T) []admin.Pipeline {
	t.Helper()
	code, body := r.get(t, "/api/v1/pipelines")
	var ps []admin.Pipeline
	if code != http.StatusOK || json.Unmarshal([]byte(body), &ps) != nil {
		t.Fatalf("/api/v1/pipelines answered %d:\n%s", code, body)
	}
	return ps
}

// stop sends SIGTERM and returns the exit code.
func (r *adminRun) stop(t *testing.T) int {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
		return exitCode(r.err)
	case <-time.After(30 * time.Second):
		t.Fatalf("flowrun still running 30s after SIGTERM\n%s", r.stderr)
		return 0
	}
}

// metrics is one scrape of /metrics: the value of every series, keyed by
// its name and labels as `name{k="v",...}` in the order they were written.
type metrics map[string]float64

var seriesRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

func (r *adminRun) scrape(t *testing.T) metrics {
	t.Helper()
	code, body := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d:\n%s", code, body)
	}
	m := metrics{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sm := seriesRE.FindStringSubmatch(line)
		if sm == nil {
			t.Fatalf("not an exposition line: %q", line)
		}
		v, err := strconv.ParseFloat(sm[3], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		m[sm[1]+sm[2]] = v
	}
	return m
}

// stage returns a stage series of pipeline p.
func (m metrics) stage(name, p, stage string) (float64, bool) {
	v, ok := m[fmt.Sprintf(`%s{pipeline=%q,stage=%q}`, name, p, stage)]
	return v, ok
}

// edges returns the queued and capacity gauges of every edge.
func (m metrics) edges() map[string][2]float64 {
	out := map[string][2]float64{}
	for k, v := range m {
		for i, name := range []string{"flowrun_edge_queued_records", "flowrun_edge_capacity_records"} {
			if rest, ok := strings.CutPrefix(k, name+"{"); ok {
				e := out[rest]
				e[i] = v
				out[rest] = e
			}
		}
	}
	return out
}

const adminFollowFlow = `pipeline "follow" {
  source "in" {
    kind          = "file"
    path          = "in.jsonl"
    codec         = "json"
    follow        = true
    poll_interval = "2ms"
  }
  filter "errors" {
    from  = in
    where = level == "ERROR"
  }
  map "shout" {
    from = errors
    set { msg = upper(msg) }
  }
  sink "out" {
    from = shout
    kind = "file"
    path = "out.jsonl"
  }
}
`

// appendLines appends lines [from, to) of the JSONL input, every fifth one
// an ERROR, in chunks.
func appendLines(t *testing.T, path string, from, to, chunk int, pause time.Duration) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	var buf []byte
	for i := from; i < to; i++ {
		level := "INFO"
		if i%5 == 0 {
			level = "ERROR"
		}
		buf = appendLine(buf, i, level, "hello world")
		if (i+1-from)%chunk == 0 || i == to-1 {
			if _, err := f.Write(buf); err != nil {
				t.Error(err)
				return
			}
			buf = buf[:0]
			time.Sleep(pause)
		}
	}
}

// TestRunAdminMetrics follows a growing file through filter → map → file
// and reads the admin server all along: while lines arrive every counter
// only grows, each stage passes on at most what it received, and each edge
// holds at most its capacity; a tap at the map returns the records it asked
// for, as the map made them; once the file stops growing the counters are
// exactly what the sink wrote (the output file, read after a graceful
// stop), the edges are empty and no stage is named the bottleneck.
func TestRunAdminMetrics(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.flow"), adminFollowFlow)
	in := filepath.Join(dir, "in.jsonl")
	const first, total = 2000, 30000
	appendLines(t, in, 0, first, first, 0)
	r := startAdmin(t, bin, dir, "p.flow")
	eventually(t, "/readyz to answer 200", r.stderr, func() bool {
		code, _ := r.get(t, "/readyz")
		return code == http.StatusOK
	})
	if code, body := r.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d %q", code, body)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		appendLines(t, in, first, total, 500, 3*time.Millisecond)
	}()
	// A tap at the map while lines arrive.
	code, body := r.get(t, "/api/v1/tap?pipeline=follow&stage=shout&limit=5")
	if code != http.StatusOK {
		t.Fatalf("tap answered %d:\n%s", code, body)
	}
	tapped := parseJSONL(t, []byte(body))
	if len(tapped) != 5 {
		t.Fatalf("tap returned %d records, want 5:\n%s", len(tapped), body)
	}
	for _, rec := range tapped {
		if rec["level"] != "ERROR" || rec["msg"] != "HELLO WORLD" {
			t.Errorf("tapped record %v did not come out of the map", rec)
		}
	}
	// Scrapes while lines arrive.
	order := []string{"in", "errors", "shout", "out"}
	var prev metrics
	for range 5 {
		m := r.scrape(t)
		for e, qc := range m.edges() {
			if qc[1] <= 0 || qc[0] < 0 || qc[0] > qc[1] {
				t.Errorf("edge %s: queued %v, capacity %v", e, qc[0], qc[1])
			}
		}
		for i, s := range order {
			in, _ := m.stage("flowrun_stage_records_in_total", "follow", s)
			out, ok := m.stage("flowrun_stage_records_out_total", "follow", s)
			if !ok {
				t.Fatalf("no records_out for stage %s", s)
			}
			if i > 0 && in > out0(m, order[i-1]) {
				t.Errorf("stage %s received %v, more than %s emitted", s, in, order[i-1])
			}
			if s != "in" && out > in {
				t.Errorf("stage %s emitted %v of %v received", s, out, in)
			}
			if prev != nil && out < out0(prev, s) {
				t.Errorf("stage %s: records_out went back from %v to %v", s, out0(prev, s), out)
			}
		}
		prev = m
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()

	errs := total / 5
	var m metrics
	eventually(t, "the sink to write every ERROR line", r.stderr, func() bool {
		m = r.scrape(t)
		return out0(m, "out") == float64(errs)
	})
	time.Sleep(50 * time.Millisecond)
	m = r.scrape(t)
	want := map[string][2]float64{"in": {0, total}, "errors": {total, float64(errs)}, "shout": {float64(errs), float64(errs)}, "out": {float64(errs), float64(errs)}}
	for s, io := range want {
		in, _ := m.stage("flowrun_stage_records_in_total", "follow", s)
		out, _ := m.stage("flowrun_stage_records_out_total", "follow", s)
		if in != io[0] || out != io[1] {
			t.Errorf("stage %s: records in %v, out %v; want %v, %v", s, in, out, io[0], io[1])
		}
		for _, c := range []string{"errors", "retries", "dropped", "dead_lettered", "skipped"} {
			if v, ok := m.stage("flowrun_stage_"+c+"_total", "follow", s); !ok || v != 0 {
				t.Errorf("stage %s: %s = %v (present %v), want 0", s, c, v, ok)
			}
		}
		_, busy := m.stage("flowrun_stage_busy_seconds_total", "follow", s)
		if busy != (s != "in") {
			t.Errorf("stage %s: busy_seconds present %v", s, busy)
		}
	}
	for e, qc := range m.edges() {
		if qc[0] != 0 || qc[1] != 1024 {
			t.Errorf("edge %s at the end: queued %v, capacity %v; want 0, 1024", e, qc[0], qc[1])
		}
	}
	if n, _ := m.stage("flowrun_sink_write_seconds_count", "follow", "out"); n < 1 {
		t.Errorf("sink write histogram counts %v writes", n)
	}
	for k, v := range map[string]float64{
		`flowrun_pipeline_status{pipeline="follow",status="running"}`: 1,
		`flowrun_ready`: 1,
		`flowrun_reloads_total{result="applied"}`:               0,
		`flowrun_pipeline_in_flight_records{pipeline="follow"}`: 0,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, ok := m["process_cpu_seconds_total"]; !ok {
		t.Error("no process metrics")
	}
	if tapDropped, _ := m.stage("flowrun_stage_tap_dropped_total", "follow", "shout"); tapDropped < 0 {
		t.Errorf("tap_dropped %v", tapDropped)
	}

	// Idle: the view of a sample taken after the end names no bottleneck.
	settled := time.Now()
	var p admin.Pipeline
	eventually(t, "a sample of the idle pipeline", r.stderr, func() bool {
		ps := r.pipelines(t)
		if len(ps) != 1 {
			t.Fatalf("pipelines: %+v", ps)
		}
		p = ps[0]
		return p.SampledAt.After(settled) && p.WindowSeconds > 0 && p.Stages[3].OutPerSecond == 0
	})
	if p.Name != "follow" || p.State != "running" || p.Bottleneck != nil || p.RecordsIn != total || p.RecordsOut != int64(errs) {
		t.Errorf("idle pipeline: %+v", p)
	}
	if len(p.Stages) != 4 || len(p.Edges) != 3 {
		t.Errorf("stages %+v, edges %+v", p.Stages, p.Edges)
	}

	if code := r.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr)
	}
	lines := readJSONL(t, filepath.Join(dir, "out.jsonl"))
	if len(lines) != errs {
		t.Errorf("the sink wrote %d lines, the metrics said %d", len(lines), errs)
	}
	if e, ok := findLog(r.stderr.String(), "pipeline finished"); !ok || e.int("records_out") != int64(errs) {
		t.Errorf("pipeline finished: %v", e)
	}
}

// out0 is a stage's records_out in m.
func out0(m metrics, stage string) float64 {
	v, _ := m.stage("flowrun_stage_records_out_total", "follow", stage)
	return v
}

// TestRunAdminReadyWhileDraining: /readyz answers 200 while the pipeline
// runs and 503 once a signal has it draining, with the pipeline's state
// "draining", until the process ends.
func TestRunAdminReadyWhileDraining(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.flow"), fmt.Sprintf(throttledFlow, 64, 5))
	r := startAdmin(t, bin, dir, "--drain-timeout", "60s", "p.flow")
	eventually(t, "/readyz to answer 200", r.stderr, func() bool {
		code, _ := r.get(t, "/readyz")
		return code == http.StatusOK
	})
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz to answer 503", r.stderr, func() bool {
		code, _ := r.get(t, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if ps := r.pipelines(t); len(ps) != 1 || ps[0].State != "draining" && ps[0].State != "running" {
		t.Errorf("pipelines while draining: %+v", ps)
	}
	eventually(t, "the state to say draining", r.stderr, func() bool {
		ps := r.pipelines(t)
		return len(ps) == 1 && ps[0].State == "draining"
	})
	if m := r.scrape(t); m["flowrun_ready"] != 0 {
		t.Errorf("flowrun_ready = %v while draining", m["flowrun_ready"])
	}
}

// slowServer answers every request after delay, 200 with {"ok": true}.
func slowServer(t *testing.T, delay time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRunAdminBottleneck runs one pipeline per cause of a bottleneck and
// waits for /api/v1/pipelines to name the stage that holds it back: a
// throttle behind a fast source, a slow HTTP sink, a slow buffered call.
// The named stage is busy at least half the time, its input edge is full
// and its output has room.
func TestRunAdminBottleneck(t *testing.T) {
	bin := buildFlowrun(t)
	sink := slowServer(t, 100*time.Millisecond)
	call := slowServer(t, 50*time.Millisecond)
	for _, tc := range []struct {
		name, want, flow string
	}{
		{"throttle", "pace", `
pipeline "p" {
  edge_capacity = 64
  source "gen" { kind = "generate" }
  throttle "pace" {
    from = gen
    rate = 200
  }
  sink "out" {
    from = pace
    kind = "discard"
  }
}`},
		{"slow http sink", "post", fmt.Sprintf(`
pipeline "p" {
  edge_capacity = 64
  source "gen" { kind = "generate" }
  map "stamp" {
    from = gen
    set { at = "now" }
  }
  sink "post" {
    from       = stamp
    kind       = "http"
    url        = %q
    batch_size = 16
  }
}`, sink.URL)},
		{"slow buffered call", "lookup", fmt.Sprintf(`
pipeline "p" {
  edge_capacity = 64
  source "gen" { kind = "generate" }
  buffered "lookup" {
    from        = gen
    call        = "http"
    url         = %q
    concurrency = 2
  }
  sink "out" {
    from = lookup
    kind = "discard"
  }
}`, call.URL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "p.flow"), tc.flow)
			r := startAdmin(t, bin, dir, "p.flow")
			var p admin.Pipeline
			eventually(t, "the bottleneck to be named", r.stderr, func() bool {
				ps := r.pipelines(t)
				if len(ps) == 1 {
					p = ps[0]
				}
				return p.Bottleneck != nil
			})
			if *p.Bottleneck != tc.want {
				t.Fatalf("bottleneck %q, want %q: %+v", *p.Bottleneck, tc.want, p)
			}
			for _, s := range p.Stages {
				if s.Name == tc.want && (s.Busy == nil || *s.Busy < admin.MinBusy) {
					t.Errorf("stage %s busy %v", s.Name, s.Busy)
				}
			}
			for _, e := range p.Edges {
				if e.To == tc.want && !e.Full || e.From == tc.want && e.Full {
					t.Errorf("edge %+v", e)
				}
			}
		})
	}
}

// TestRunAdminRefusesBadAddresses: a bad --admin address is a usage error
// naming it, and an address already in use fails the run before any
// pipeline starts.
func TestRunAdminRefusesBadAddresses(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.flow"), fmt.Sprintf(throttledFlow, 64, 5))
	for addr, want := range map[string]string{
		"127.0.0.1":       "missing port",
		"127.0.0.1:99999": `port "99999" is not a number`,
		"localhost:http":  `port "http" is not a number`,
	} {
		res := runIn(t, bin, dir, "run", "--admin", addr, "p.flow")
		if res.code != exitUsage || !strings.Contains(res.log, want) || !strings.Contains(res.log, addr) {
			t.Errorf("--admin %s: exit %d, stderr %q; want %d and %q", addr, res.code, res.log, exitUsage, want)
		}
	}
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	addr := strings.TrimPrefix(busy.URL, "http://")
	res := runIn(t, bin, dir, "run", "--admin", addr, "p.flow")
	if res.code != exitFail || !strings.Contains(res.log, "cannot listen on "+addr) || strings.Contains(res.log, "pipeline started") {
		t.Errorf("--admin %s in use: exit %d, stderr %q", addr, res.code, res.log)
	}
}

// writeFile writes text to path.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
