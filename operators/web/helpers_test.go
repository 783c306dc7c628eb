package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/sink"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type M = map[string]any

// pipe is a running pipeline "p" planned from a .flow snippet.
type pipe struct {
	t  testing.TB
	g  *flowruntime.Graph
	ex *flowruntime.Execution
}

// startFlow plans src, builds pipeline "p" (replacing the sinks named in
// sinks), starts it and stops it at the end of the test.
func startFlow(t testing.TB, src string, sinks map[string]flowruntime.Sink) *pipe {
	t.Helper()
	return startPlanned(t, optest.Plan(t, src, "p"), sinks)
}

// startPlanned builds and starts a planned pipeline.
func startPlanned(t testing.TB, p *planner.Pipeline, sinks map[string]flowruntime.Sink) *pipe {
	t.Helper()
	env := operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: testLogger(t)}
	g, err := all.Registry().BuildGraph(p, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range g.Nodes {
		if s, ok := sinks[n.Name]; ok {
			n.Sink = s
		}
	}
	ex, err := flowruntime.Start(context.Background(), g, flowruntime.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pp := &pipe{t: t, g: g, ex: ex}
	t.Cleanup(func() {
		ex.Stop()
		select {
		case <-ex.Done():
		case <-time.After(20 * time.Second):
			ex.Kill()
			t.Errorf("pipeline did not stop within 20s")
			<-ex.Done()
		}
	})
	return pp
}

// node returns the built node named name.
func (p *pipe) node(name string) *flowruntime.Node {
	p.t.Helper()
	for _, n := range p.g.Nodes {
		if n.Name == name {
			return n
		}
	}
	p.t.Fatalf("no node %q", name)
	return nil
}

// stop stops the pipeline gracefully and returns its error.
func (p *pipe) stop() error {
	p.ex.Stop()
	select {
	case <-p.ex.Done():
	case <-time.After(20 * time.Second):
		p.t.Fatalf("pipeline did not stop within 20s")
	}
	return p.ex.Wait()
}

// wait waits for the pipeline to end on its own.
func (p *pipe) wait() error {
	select {
	case <-p.ex.Done():
	case <-time.After(30 * time.Second):
		p.t.Fatalf("pipeline did not end within 30s")
	}
	return p.ex.Wait()
}

// listener is what the serving kinds expose.
type listener interface {
	Ready() <-chan struct{}
	Addr() string
}

// addrOf waits until l listens and returns its address.
func addrOf(t testing.TB, l listener) string {
	t.Helper()
	select {
	case <-l.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start listening within 10s")
	}
	return l.Addr()
}

// eventually polls cond until it holds or 15s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLogger logs to the test at debug level when -v is given.
func testLogger(t testing.TB) hclog.Logger {
	if !testing.Verbose() {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// newClient returns an HTTP client with its own connections, closed at the
// end of the test.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// memory returns a memory sink.
func memory() *sink.Memory { return &sink.Memory{} }

// sseEvent is an event as a browser's EventSource sees it.
type sseEvent struct {
	ID, Event, Data string
}

// sseReader reads an event stream as browsers do (the WHATWG event-stream
// interpretation): lines, comments starting with ':', fields id, event and
// data, an event dispatched at a blank line when it has data.
type sseReader struct {
	r        *bufio.Reader
	comments []string
	lastID   string
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReader(r)} }

// next returns the next dispatched event.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	hasData := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return sseEvent{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !hasData {
				ev = sseEvent{}
				continue
			}
			ev.ID = s.lastID
			ev.Data = strings.Join(data, "\n")
			if ev.Event == "" {
				ev.Event = "message"
			}
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			s.comments = append(s.comments, strings.TrimSpace(line[1:]))
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			s.lastID = value
		case "event":
			ev.Event = value
		case "data":
			data = append(data, value)
			hasData = true
		}
	}
}

// openSSE opens an event stream at url, with Last-Event-ID when lastID is
// not empty.
func openSSE(t testing.TB, ctx context.Context, c *http.Client, url, lastID string) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: %s, Content-Type %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	return resp, newSSEReader(resp.Body)
}

// post sends body to url and returns the status and the answer.
func post(t testing.TB, c *http.Client, url, contentType, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ids returns the "id" fields of recs, which must be int64.
func ids(t testing.TB, recs []M) []int64 {
	t.Helper()
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		id, ok := r["id"].(int64)
		if !ok {
			t.Fatalf("record without an integer id: %v", r)
		}
		out = append(out, id)
	}
	return out
}

// ndjson returns n records {"id": from+i} as NDJSON.
func ndjson(from, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"id\": %d}\n", from+i)
	}
	return b.String()
}

// slowSink is a memory sink that waits before each write.
type slowSink struct {
	sink.Memory
	delay  time.Duration
	writes atomic.Int64
}

func (s *slowSink) Write(ctx context.Context, recs []flowruntime.Record) error {
	s.writes.Add(1)
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Memory.Write(ctx, recs)
}
