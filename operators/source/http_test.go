package source_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/source"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// heldEmitter keeps the done callbacks so a test decides when records are
// finished.
type heldEmitter struct {
	optest.Emitter
	mu    sync.Mutex
	dones []func()
}

func (h *heldEmitter) Emit(ctx context.Context, recs []flowruntime.Record, done func()) error {
	if err := h.Emitter.Emit(ctx, recs, nil); err != nil {
		return err
	}
	h.mu.Lock()
	h.dones = append(h.dones, done)
	h.mu.Unlock()
	return nil
}

func (h *heldEmitter) finishAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.dones {
		if d != nil {
			d()
		}
	}
	h.dones = nil
}

// startHTTP runs an http source with opts on a free port until the test
// ends and returns its base URL.
func startHTTP(t *testing.T, opts M, out flowruntime.Emitter) string {
	t.Helper()
	all := M{"address": "127.0.0.1:0"}
	for k, v := range opts {
		all[k] = v
	}
	src := build(t, "http", all, optest.Env(nil)).(*source.HTTP)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	select {
	case <-src.Ready():
	case err := <-done:
		t.Fatalf("Run = %v before listening", err)
	}
	return "http://" + src.Addr()
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestHTTPSource(t *testing.T) {
	var e optest.Emitter
	base := startHTTP(t, M{"path": "/ingest", "max_body_bytes": 200}, &e)
	tests := []struct {
		body   string
		status int
		reply  string
	}{
		{`[{"id": 1}, {"id": 2}]`, 200, `{"accepted":2}`},
		{"{\n  \"id\": 3\n}", 200, `{"accepted":1}`},
		{"{\"id\": 4}\n\n{\"id\": 5}\n", 200, `{"accepted":2}`},
		{``, 200, `{"accepted":0}`},
		{`[1]`, 400, "element 0 of the array is not an object"},
		{"{\"id\": 6}\n{oops}", 400, "line 2: invalid JSON"},
		{`[` + strings.Repeat(`{"id": 0},`, 30) + `{}]`, 413, "body larger than 200 bytes"},
	}
	for _, tt := range tests {
		status, reply := post(t, base+"/ingest", tt.body)
		if status != tt.status || !strings.Contains(reply, tt.reply) {
			t.Errorf("POST %.30q = %d %q, want %d %q", tt.body, status, reply, tt.status, tt.reply)
		}
	}
	want := []M{{"id": int64(1)}, {"id": int64(2)}, {"id": int64(3)}, {"id": int64(4)}, {"id": int64(5)}}
	if diff := cmp.Diff(want, e.Fields()); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	var pos []int64
	for _, r := range e.Records() {
		pos = append(pos, r.Meta.Position)
	}
	if diff := cmp.Diff([]int64{0, 1, 2, 3, 4}, pos); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	if status, _ := post(t, base+"/other", `{}`); status != 404 {
		t.Errorf("another path answered %d", status)
	}
	resp, err := http.Get(base + "/ingest")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET answered %d", resp.StatusCode)
	}
}

// TestHTTPSourceWaitsForDelivery checks that a request is answered only
// once its records are finished.
func TestHTTPSourceWaitsForDelivery(t *testing.T) {
	e := &heldEmitter{}
	base := startHTTP(t, M{"codec": "lines"}, e)
	answered := make(chan int)
	go func() {
		status, _ := post(t, base, "a\nb")
		answered <- status
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.Records()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	select {
	case status := <-answered:
		t.Fatalf("answered %d before the records were finished", status)
	case <-time.After(50 * time.Millisecond):
	}
	e.finishAll()
	if status := <-answered; status != 200 {
		t.Errorf("answered %d", status)
	}
	if diff := cmp.Diff([]M{{"line": "a"}, {"line": "b"}}, e.Fields()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestHTTPSourceBackpressure checks that a request the pipeline has no room
// for is held, then answered 429 after max_wait.
func TestHTTPSourceBackpressure(t *testing.T) {
	e := &optest.Emitter{Credit: make(chan struct{})}
	base := startHTTP(t, M{"max_wait": 100 * time.Millisecond}, e)
	start := time.Now()
	resp, err := http.Post(base, "application/json", strings.NewReader(`{"id": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("answered %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("answered after %v, before max_wait", waited)
	}
}

func TestHTTPSourceChecks(t *testing.T) {
	diags := optest.PlanDiagnostics(t, `pipeline "p" {
  source "in" {
    kind    = "http"
    address = "8080"
    path    = "ingest"
  }
  sink "out" {
    from = in
    kind = "discard"
  }
}
`)
	if len(diags) != 2 || !strings.Contains(diags[0].Detail, "host:port") || !strings.Contains(diags[1].Detail, "start with /") {
		t.Errorf("diagnostics: %v", diags)
	}
}
