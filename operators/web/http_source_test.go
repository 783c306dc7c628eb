package web_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/web"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

func TestHTTPSourceIngest(t *testing.T) {
	mem := memory()
	p := startFlow(t, `
pipeline "p" {
  source "in" {
    kind           = "http"
    listen         = "127.0.0.1:0"
    max_body_bytes = 200
  }
  sink "out" {
    from = in
    kind = "discard"
  }
}`, map[string]flowruntime.Sink{"out": mem})
	src := p.node("in").Source.(*web.HTTPSource)
	base := "http://" + addrOf(t, src)
	c := newClient(t)

	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		answer      string
		want        []M
	}{
		{"one object", "POST", "application/json", `{"id": 1, "s": "a"}`, 200, `{"accepted":1}`,
			[]M{{"id": int64(1), "s": "a"}}},
		{"array", "POST", "application/json", `[{"id": 2}, {"id": 3}]`, 200, `{"accepted":2}`,
			[]M{{"id": int64(2)}, {"id": int64(3)}}},
		{"ndjson", "POST", "application/x-ndjson", "{\"id\": 4}\n\n{\"id\": 5}\n", 200, `{"accepted":2}`,
			[]M{{"id": int64(4)}, {"id": int64(5)}}},
		{"pretty object", "PUT", "application/json", "{\n  \"id\": 6\n}\n", 200, `{"accepted":1}`,
			[]M{{"id": int64(6)}}},
		{"empty body", "POST", "application/json", "", 200, `{"accepted":0}`, nil},
		{"bad json", "POST", "application/json", `{"id": }`, 400, `{"error":"invalid JSON at byte 7: `, nil},
		{"bad ndjson line", "POST", "application/x-ndjson", "{\"id\": 7}\n[1]\n", 400, `{"error":"line 2: `, nil},
		{"array of scalars", "POST", "application/json", `[1, 2]`, 400, `{"error":"element 0 of the array is not a JSON object"}`, nil},
		{"too large", "POST", "application/json", `{"s": "` + strings.Repeat("x", 300) + `"}`, 413,
			`{"error":"the body is larger than 200 bytes"}`, nil},
		{"wrong method", "GET", "", "", 405, `{"error":"use POST"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(mem.Fields())
			req, _ := http.NewRequest(tt.method, base+"/ingest", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.status || !strings.HasPrefix(body, tt.answer) {
				t.Fatalf("got %d %q, want %d %q...", resp.StatusCode, body, tt.status, tt.answer)
			}
			// respond = "finished": a 200 means the records are written.
			got := mem.Fields()[before:]
			if diff := cmp.Diff(tt.want, got, cmpEmpty); diff != "" {
				t.Errorf("sink got (-want +got):\n%s", diff)
			}
		})
	}

	resp, err := c.Get(base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "ready\n" {
		t.Errorf("GET /ready = %d %q, want 200 ready", resp.StatusCode, body)
	}
	if st := src.Stats(); st.Accepted != 6 || st.Rejected != 0 {
		t.Errorf("stats = %+v, want 6 accepted, 0 rejected", st)
	}
	recs := mem.Records()
	for i, r := range recs {
		if r.Meta.Source != "in" || r.Meta.Position != int64(i) || r.Meta.Time.IsZero() {
			t.Errorf("record %d meta = %+v, want source in, position %d, a time", i, r.Meta, i)
		}
	}

	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := c.Get(base + "/ready"); err == nil {
		t.Error("the server still answers after the pipeline stopped")
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []M) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return cmp.Equal(a, b)
})

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestHTTPSourceBackpressure posts 100,000 records, 100 per request, from
// several clients, faster than the sink writes them: requests the pipeline
// cannot take within the hold time are answered 429 and posted again, the
// records in flight never exceed the plan's bound, and every record of a
// 2xx answer reaches the sink.
func TestHTTPSourceBackpressure(t *testing.T) {
	for _, tc := range []struct {
		respond string
		total   int64
	}{{"accepted", 100_000}, {"finished", 20_000}} {
		respond, total := tc.respond, tc.total
		t.Run(respond, func(t *testing.T) {
			slow := &slowSink{delay: 2 * time.Millisecond}
			p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  edge_capacity = 512
  source "in" {
    kind    = "http"
    listen  = "127.0.0.1:0"
    hold    = "5ms"
    respond = %q
  }
  filter "odd_or_even" {
    from  = in
    where = id >= 0
  }
  sink "out" {
    from = odd_or_even
    kind = "discard"
  }
}`, respond), map[string]flowruntime.Sink{"out": slow})
			src := p.node("in").Source.(*web.HTTPSource)
			url := "http://" + addrOf(t, src) + "/ingest"
			c := newClient(t)

			const per, clients = 100, 16
			var next atomic.Int64
			var mu sync.Mutex
			var accepted []int64
			var tooMany, retryAfter atomic.Int64
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						from := next.Add(per) - per
						if from >= total {
							return
						}
						for {
							resp, err := c.Post(url, "application/x-ndjson", strings.NewReader(ndjson(int(from), per)))
							if err != nil {
								t.Errorf("POST: %v", err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode == http.StatusTooManyRequests {
								tooMany.Add(1)
								if resp.Header.Get("Retry-After") == "1" {
									retryAfter.Add(1)
								}
								time.Sleep(time.Millisecond)
								continue
							}
							if resp.StatusCode/100 != 2 {
								t.Errorf("POST: %s", resp.Status)
								return
							}
							mu.Lock()
							for i := range per {
								accepted = append(accepted, from+int64(i))
							}
							mu.Unlock()
							break
						}
					}
				}()
			}
			wg.Wait()
			if err := p.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			stats := p.ex.Stats()
			if stats.PeakInFlight > stats.Capacity() {
				t.Errorf("peak in flight %d exceeds the bound %d", stats.PeakInFlight, stats.Capacity())
			}
			if stats.PeakInFlight == 0 {
				t.Error("nothing was in flight")
			}
			if tooMany.Load() == 0 {
				t.Error("no request was answered 429")
			}
			if retryAfter.Load() != tooMany.Load() {
				t.Errorf("%d of %d 429 answers had Retry-After: 1", retryAfter.Load(), tooMany.Load())
			}
			got := ids(t, slow.Fields())
			slices.Sort(got)
			slices.Sort(accepted)
			if int64(len(accepted)) != total {
				t.Fatalf("%d records accepted, want %d", len(accepted), total)
			}
			if !slices.Equal(got, accepted) {
				t.Errorf("the sink got %d records, want the %d accepted ones exactly once", len(got), len(accepted))
			}
			t.Logf("%d requests answered 429; peak in flight %d of %d; %d writes", tooMany.Load(), stats.PeakInFlight, stats.Capacity(), slow.writes.Load())
		})
	}
}

// syncBuffer is a strings.Builder safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// runSource builds an http source from opts and runs it on emitter until
// the returned stop is called; stop returns Run's error and what the
// source logged.
func runSource(t *testing.T, opts M, em flowruntime.Emitter) (src *web.HTTPSource, url string, stop func() (error, string)) {
	t.Helper()
	var logged syncBuffer
	env := optest.Env(nil)
	env.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logged})
	opts["listen"] = "127.0.0.1:0"
	src = optest.Build(t, optest.Stage(t, "source", "http", "in", opts), env).Source.(*web.HTTPSource)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, em) }()
	url = "http://" + addrOf(t, src) + "/ingest"
	stopped := false
	stop = func() (error, string) {
		cancel()
		err := <-errc
		stopped = true
		return err, logged.String()
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return src, url, stop
}

// TestHTTPSourceCountsAnswers: the source counts its answers by status and
// logs them when it stops; a 400 or 413 is no longer invisible in its final
// line.
func TestHTTPSourceCountsAnswers(t *testing.T) {
	src, url, stop := runSource(t, M{"max_body_bytes": 64, "respond": "accepted"}, &optest.Emitter{})
	c := newClient(t)
	tests := []struct {
		name, method, body string
		status             int
	}{
		{"object", "POST", `{"id":1}`, 200},
		{"empty", "POST", "", 200},
		{"ndjson", "PUT", "{\"id\":2}\n{\"id\":3}\n", 200},
		{"bad json", "POST", `{"id": }`, 400},
		{"scalars", "POST", `[1]`, 400},
		{"bad line", "POST", "{\"id\":4}\nnope\n", 400},
		{"too large", "POST", `{"s":"` + strings.Repeat("x", 100) + `"}`, 413},
		{"method", "GET", "", 405},
	}
	want := map[int]int64{}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, url, strings.NewReader(tt.body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		readAll(t, resp)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: answered %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		want[tt.status]++
	}
	if got := src.Stats().Answers; !maps.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	err, logged := stop()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, kv := range []string{"accepted=3", "rejected=0", "answered_200=3", "answered_400=3", "answered_405=1", "answered_413=1"} {
		if !strings.Contains(logged, kv) {
			t.Errorf("the final line lacks %s:\n%s", kv, logged)
		}
	}
	if strings.Contains(logged, "answered_429") || strings.Contains(logged, "client_gone") {
		t.Errorf("the final line names what never happened:\n%s", logged)
	}
}

// TestHTTPSourceCountsBusyAndStopping: a request the pipeline does not take
// within the hold time is answered 429, one caught by the stop 503, and
// both are counted and logged with their records as rejected.
func TestHTTPSourceCountsBusyAndStopping(t *testing.T) {
	// The emitter never takes the records: the first request stays in Emit.
	em := &stuckEmitter{entered: make(chan struct{})}
	src, url, stop := runSource(t, M{"hold": 50 * time.Millisecond}, em)
	c := newClient(t)
	first := make(chan int, 1)
	go func() {
		resp, err := c.Post(url, "application/json", strings.NewReader(`[{"id":1},{"id":2}]`))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-em.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request was not admitted within 10s")
	}
	resp, err := c.Post(url, "application/json", strings.NewReader(`{"id":3}`))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("a busy pipeline: %d, Retry-After %q; want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	err, logged := stop()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if status := <-first; status != 503 {
		t.Errorf("the request caught by the stop: %d, want 503", status)
	}
	st := src.Stats()
	if want := map[int]int64{429: 1, 503: 1}; !maps.Equal(st.Answers, want) || st.Rejected != 3 || st.Accepted != 0 {
		t.Errorf("stats %+v, want answers %v and 3 records rejected", st, want)
	}
	for _, kv := range []string{"rejected=3", "answered_429=1", "answered_503=1"} {
		if !strings.Contains(logged, kv) {
			t.Errorf("the final line lacks %s:\n%s", kv, logged)
		}
	}
}

// stuckEmitter takes no records: Emit blocks until its context ends.
type stuckEmitter struct {
	once    sync.Once
	entered chan struct{}
}

func (e *stuckEmitter) Emit(ctx context.Context, _ []flowruntime.Record, _ func()) error {
	e.once.Do(func() { close(e.entered) })
	<-ctx.Done()
	return ctx.Err()
}
