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

// TestHTTPSinkPermanent: a 4xx answer other than 429 is not retried: with
// on_error = "retry" (the default) the pipeline fails at once; with
// on_error = "dead_letter" the batch goes to the dead-letter sink with the
// error.
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
  sink "rejects" {
    kind = "discard"
  }
}`
	answer := func(n int) int {
		if n == 2 {
			return 422
		}
		return 200
	}
	t.Run("retry", func(t *testing.T) {
		tg := newTarget(t, answer)
		p := startFlow(t, fmt.Sprintf(strings.Replace(flow, "sink \"rejects\" {\n    kind = \"discard\"\n  }", "", 1), tg.URL, ""), nil)
		err := p.wait()
		if err == nil || !strings.Contains(err.Error(), "422 Unprocessable Entity") || !flowruntime.IsPermanent(err) {
			t.Fatalf("pipeline error %v: want the permanent 422 error", err)
		}
		if st, _ := p.ex.Stats().Node("out"); st.Retries != 0 {
			t.Errorf("%d retries of a 422 answer, want none", st.Retries)
		}
		if n := tg.n.Load(); n != 2 {
			t.Errorf("the target got %d requests, want 2", n)
		}
	})
	t.Run("dead_letter", func(t *testing.T) {
		tg := newTarget(t, answer)
		rejects := memory()
		p := startFlow(t, fmt.Sprintf(flow, tg.URL, "on_error = \"dead_letter\"\n    dead_letter = rejects"),
			map[string]flowruntime.Sink{"rejects": rejects})
		if err := p.wait(); err != nil {
			t.Fatalf("pipeline: %v", err)
		}
		// The runtime batch of 6 records went as 3 requests: the first
		// succeeded, the second failed for good, so the whole batch is
		// dead-lettered (at least once: records 0 and 1 reached both).
		got := rejects.Fields()
		if !slices.Equal(ids(t, got), seq(6)) {
			t.Fatalf("dead-lettered ids %v, want the whole batch 0..5", ids(t, got))
		}
		for _, r := range got {
			if msg, _ := r["error"].(string); !strings.Contains(msg, "422 Unprocessable Entity: status 422") || r["stage"] != "out" {
				t.Errorf("dead-lettered record %v: want the 422 error and stage out", r)
			}
		}
		if n := tg.n.Load(); n != 2 {
			t.Errorf("the target got %d requests, want 2", n)
		}
	})
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
	if err == nil || flowruntime.IsPermanent(err) {
		t.Errorf("error %v: want a retryable error", err)
	}
	n.Sink.Close()
}
