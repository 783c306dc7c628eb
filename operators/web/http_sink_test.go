package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators/internal/faulty"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// target is an HTTP server receiving batches of records.
type target struct {
	*httptest.Server
	mu       sync.Mutex
	ids      []int64
	requests []*http.Request
	bodies   []string
	// answer returns the status for request number n (from 1).
	answer func(n int) int
	n      atomic.Int64
}

func newTarget(t *testing.T, answer func(n int) int) *target {
	tg := &target{answer: answer}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(tg.n.Add(1))
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		status := tg.answer(n)
		if status/100 == 2 {
			var recs []M
			if r.Header.Get("Content-Type") == "application/x-ndjson" {
				for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
					var m M
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Errorf("ndjson line %q: %v", l, err)
					}
					recs = append(recs, m)
				}
			} else if err := json.Unmarshal(body, &recs); err != nil {
				t.Errorf("body %q: %v", body, err)
			}
			tg.mu.Lock()
			for _, r := range recs {
				tg.ids = append(tg.ids, int64(r["id"].(float64)))
			}
			tg.requests = append(tg.requests, r)
			tg.bodies = append(tg.bodies, string(body))
			tg.mu.Unlock()
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "status %d", status)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) received() []int64 {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return slices.Clone(tg.ids)
}

func seq(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

// TestHTTPSinkRecovers: the target answers 500 to its first 25 requests
// (and 503, 429 to a few later ones); the sink's batches are retried with
// backoff until it recovers, and the target receives every record exactly
// once, in order.
func TestHTTPSinkRecovers(t *testing.T) {
	tg := newTarget(t, func(n int) int {
		switch {
		case n <= 25:
			return 500
		case n == 30:
			return 503
		case n == 31:
			return 429
		}
		return 200
	})
	p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 2000
    template = { id: seq }
  }
  sink "out" {
    from              = gen
    kind              = "http"
    url               = %q
    batch_size        = 50
    retry_attempts    = 100
    retry_backoff     = "1ms"
    retry_max_backoff = "10ms"
  }
}`, tg.URL), nil)
	if err := p.wait(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	if got := tg.received(); !slices.Equal(got, seq(2000)) {
		t.Errorf("target got %d records (first %v), want ids 0..1999 once each in order", len(got), got[:min(len(got), 10)])
	}
	st, _ := p.ex.Stats().Node("out")
	if st.Retries < 27 || st.Out != 2000 {
		t.Errorf("sink stats %+v: want 2000 written after at least 27 retries", st)
	}
}

// TestHTTPSinkPermanent: a 4xx answer other than 408 and 429 is not
// retried; the runtime splits the batch until it finds the record the
// target refuses, and the sink resends none of the records the target took
// before: with on_error = "retry" (the default) and no dead letter the
// pipeline fails at that record after delivering those before it; with
// on_error = "dead_letter" only that record is dead-lettered.
func TestHTTPSinkPermanent(t *testing.T) {
	const flow = `
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 6
    template = { id: seq }
  }
  sink "out" {
    from           = gen
    kind           = "http"
    url            = %q
    batch_size     = 2
    retry_attempts = 10
    %s
  }
}`
	const deadLetter = `on_error = "dead_letter"
    dead_letter = rejects
  }
  sink "rejects" {
    kind = "discard"`
	tests := []struct {
		name         string
		opts         string
		wantErr      bool
		wantAccepted []int64
		wantDead     []int64
	}{
		{"retry", "", true, []int64{0, 1, 2}, nil},
		{"dead_letter", deadLetter, false, []int64{0, 1, 2, 4, 5}, []int64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := faulty.NewServer(t).Reject(http.StatusUnprocessableEntity, 3)
			rejects := memory()
			p := startFlow(t, fmt.Sprintf(flow, tg.URL, tt.opts), map[string]flowruntime.Sink{"rejects": rejects})
			err := p.wait()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "422 Unprocessable Entity") || !onerror.IsPermanent(err) {
					t.Fatalf("pipeline error %v: want the permanent 422 error", err)
				}
			} else if err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			if got := tg.Accepted(); !slices.Equal(got, tt.wantAccepted) {
				t.Errorf("the target took %v, want %v once each", got, tt.wantAccepted)
			}
			if st, _ := p.ex.Stats().Node("out"); st.Retries != 0 {
				t.Errorf("%d retries of a 422 answer, want none", st.Retries)
			}
			got := rejects.Fields()
			if !slices.Equal(ids(t, got), tt.wantDead) {
				t.Fatalf("dead-lettered ids %v, want %v", ids(t, got), tt.wantDead)
			}
			for _, r := range got {
				if msg, _ := r["error"].(string); !strings.Contains(msg, "422 Unprocessable Entity") || r["stage"] != "out" {
					t.Errorf("dead-lettered record %v: want the 422 error and stage out", r)
				}
			}
		})
	}
}

// TestHTTPSinkClassifies: 408, 429 and 5xx answers and connection
// failures are transient, every other answer but 2xx is permanent, and a
// Retry-After (seconds or an HTTP-date) on a transient answer asks the
// runtime to wait that long.
func TestHTTPSinkClassifies(t *testing.T) {
	clock := optest.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	date := func(d time.Duration) string { return clock.Now().Add(d).Format(http.TimeFormat) }
	tests := []struct {
		answer        faulty.Answer
		wantPermanent bool
		// wantAfter is the wait asked for, -1 for none.
		wantAfter time.Duration
	}{
		{faulty.Answer{Status: 400}, true, -1},
		{faulty.Answer{Status: 401}, true, -1},
		{faulty.Answer{Status: 404}, true, -1},
		{faulty.Answer{Status: 409}, true, -1},
		{faulty.Answer{Status: 413}, true, -1},
		{faulty.Answer{Status: 422}, true, -1},
		{faulty.Answer{Status: 400, RetryAfter: "5"}, true, -1},
		{faulty.Answer{Status: 408}, false, -1},
		{faulty.Answer{Status: 429}, false, -1},
		{faulty.Answer{Status: 500}, false, -1},
		{faulty.Answer{Status: 502}, false, -1},
		{faulty.Answer{Status: 503}, false, -1},
		{faulty.Answer{Status: 504}, false, -1},
		{faulty.Answer{Status: 503, RetryAfter: "2"}, false, 2 * time.Second},
		{faulty.Answer{Status: 429, RetryAfter: " 7 "}, false, 7 * time.Second},
		{faulty.Answer{Status: 429, RetryAfter: "0"}, false, 0},
		{faulty.Answer{Status: 503, RetryAfter: date(3 * time.Second)}, false, 3 * time.Second},
		{faulty.Answer{Status: 503, RetryAfter: date(-time.Minute)}, false, 0},
		{faulty.Answer{Status: 503, RetryAfter: "soon"}, false, -1},
		{faulty.Answer{Status: 503, RetryAfter: "-3"}, false, -1},
		{faulty.Drop, false, -1},
		{faulty.Hang, false, -1},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%d %q", tt.answer.Status, tt.answer.RetryAfter)
		switch {
		case tt.answer.Drop:
			name = "connection closed"
		case tt.answer.Hang:
			name = "timeout"
		}
		t.Run(name, func(t *testing.T) {
			tg := faulty.NewServer(t).Fail(1, tt.answer)
			n := optest.Build(t, optest.Stage(t, "sink", "http", "out", M{"url": tg.URL, "timeout": 200 * time.Millisecond}), optest.Env(clock))
			defer n.Sink.Close()
			err := n.Sink.Write(t.Context(), []flowruntime.Record{{Fields: M{"id": int64(1)}}})
			if err == nil {
				t.Fatal("no error")
			}
			if onerror.IsPermanent(err) != tt.wantPermanent {
				t.Errorf("error %v: permanent %v, want %v", err, onerror.IsPermanent(err), tt.wantPermanent)
			}
			after, ok := onerror.RetryAfterOf(err)
			if !ok {
				after = -1
			}
			if after != tt.wantAfter {
				t.Errorf("error %v: asks to wait %v, want %v", err, after, tt.wantAfter)
			}
			// The next request is accepted.
			if err := n.Sink.Write(t.Context(), []flowruntime.Record{{Fields: M{"id": int64(2)}}}); err != nil {
				t.Errorf("second write: %v", err)
			}
		})
	}
}

// TestHTTPSinkHonoursRetryAfter: the runtime waits what a 503's
// Retry-After asks for, though the backoff would retry at once.
func TestHTTPSinkHonoursRetryAfter(t *testing.T) {
	tg := faulty.NewServer(t).Fail(1, faulty.Answer{Status: 503, RetryAfter: "1"})
	p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 1
    template = { id: seq }
  }
  sink "out" {
    from              = gen
    kind              = "http"
    url               = %q
    retry_backoff     = "1ms"
    retry_max_backoff = "2s"
  }
}`, tg.URL), nil)
	if err := p.wait(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	reqs := tg.Requests()
	if len(reqs) != 2 || !slices.Equal(tg.Accepted(), []int64{0}) {
		t.Fatalf("%d requests, accepted %v: want 2 and [0]", len(reqs), tg.Accepted())
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 900*time.Millisecond {
		t.Errorf("retried after %v, want the 1s the target asked for", gap)
	}
}

// TestHTTPSinkLogsNoRetries: the runtime logs each retry, so the sink
// logs nothing of its own about a failed request, at any level.
func TestHTTPSinkLogsNoRetries(t *testing.T) {
	tg := faulty.NewServer(t).Fail(1, faulty.Answer{Status: 503, RetryAfter: "1"}).Fail(1, faulty.Answer{Status: 500})
	var logged strings.Builder
	env := optest.Env(nil)
	env.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logged})
	n := optest.Build(t, optest.Stage(t, "sink", "http", "out", M{"url": tg.URL}), env)
	defer n.Sink.Close()
	for range 2 {
		if err := n.Sink.Write(t.Context(), []flowruntime.Record{{Fields: M{"id": int64(1)}}}); err == nil {
			t.Fatal("a 5xx answer: no error")
		}
	}
	if logged.Len() > 0 {
		t.Errorf("the sink logged:\n%s", logged.String())
	}
}

func TestHTTPSinkRequest(t *testing.T) {
	tg := newTarget(t, func(int) int { return 204 })
	n := optest.Build(t, optest.PlanStage(t, fmt.Sprintf(`
pipeline "p" {
  source "in" {
    kind = "http"
  }
  sink "out" {
    from       = in
    kind       = "http"
    url        = %q
    method     = "PUT"
    codec      = "ndjson"
    batch_size = 2
    headers    = { Authorization = "Bearer t0k", "X-Count" = 3 }
  }
}`, tg.URL+"/bulk"), "out"), optest.Env(nil))
	recs := []flowruntime.Record{{Fields: M{"id": int64(0), "s": "a\nb"}}, {Fields: M{"id": int64(1)}}, {Fields: M{"id": int64(2)}}}
	if err := n.Sink.Write(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if err := n.Sink.Close(); err != nil {
		t.Fatal(err)
	}
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if len(tg.requests) != 2 {
		t.Fatalf("%d requests, want 2", len(tg.requests))
	}
	r := tg.requests[0]
	for k, want := range map[string]string{"Authorization": "Bearer t0k", "X-Count": "3", "Content-Type": "application/x-ndjson"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if r.Method != "PUT" || r.URL.Path != "/bulk" {
		t.Errorf("request %s %s, want PUT /bulk", r.Method, r.URL.Path)
	}
	if want := "{\"id\":0,\"s\":\"a\\nb\"}\n{\"id\":1}\n"; tg.bodies[0] != want {
		t.Errorf("body %q, want %q", tg.bodies[0], want)
	}
}

func TestHTTPSinkConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	n := optest.Build(t, optest.Stage(t, "sink", "http", "out", M{"url": url}), optest.Env(nil))
	err := n.Sink.Write(t.Context(), []flowruntime.Record{{Fields: M{"id": int64(1)}}})
	if err == nil || onerror.IsPermanent(err) {
		t.Errorf("error %v: want a retryable error", err)
	}
	n.Sink.Close()
}
