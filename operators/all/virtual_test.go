package all_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// stampSink records the virtual time at which each record is written.
type stampSink struct {
	clock flowruntime.Clock
	mu    sync.Mutex
	at    []time.Time
}

func (s *stampSink) Write(_ context.Context, recs []flowruntime.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for range recs {
		s.at = append(s.at, now)
	}
	return nil
}

func (s *stampSink) Close() error { return nil }

func (s *stampSink) until(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.at {
		if !at.After(t) {
			n++
		}
	}
	return n
}

// TestThrottleOnVirtualClock runs the throttle kind from a .flow file on the
// runtime's virtual clock: at 100 per second with a burst of 10, an endless
// generator gets 310 ± 1 records through in 3 virtual seconds, every run.
func TestThrottleOnVirtualClock(t *testing.T) {
	for range 3 {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := flowruntime.NewVirtualClock(start)
		clock.SetAuto(true)
		p := optest.Plan(t, `
pipeline "p" {
  source "gen" {
    kind = "generate"
  }
  throttle "paced" {
    from  = gen
    rate  = 100
    per   = "1s"
    burst = 10
  }
  sink "out" {
    from = paced
    kind = "discard"
  }
}`, "p")
		g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: clock, Logger: hclog.NewNullLogger()})
		if err != nil {
			t.Fatal(err)
		}
		sink := &stampSink{clock: clock}
		g.Nodes[len(g.Nodes)-1].Sink = sink
		ex, err := flowruntime.Start(context.Background(), g, flowruntime.Options{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		<-clock.After(3*time.Second + time.Millisecond)
		ex.Kill()
		_ = ex.Wait()
		if n := sink.until(start.Add(3 * time.Second)); n < 309 || n > 311 {
			t.Fatalf("%d records in 3 virtual seconds, want 310 ± 1", n)
		}
	}
}

// TestBufferedHTTPConcurrency runs buffered http calls against a real HTTP
// server that records how many requests it serves at once: with
// concurrency = 10 there are never more than 10, there are 10 at some
// point, and ordered = true keeps the input order although the server
// answers in random order.
func TestBufferedHTTPConcurrency(t *testing.T) {
	var running, most atomic.Int64
	// The first requests wait until ten are being served at once (or a
	// while has passed), so that the full concurrency is reached for sure.
	full := make(chan struct{})
	var fullOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n >= 10 {
			fullOnce.Do(func() { close(full) })
		}
		select {
		case <-full:
		case <-time.After(5 * time.Second):
		}
		body, _ := io.ReadAll(r.Body)
		var rec map[string]any
		_ = json.Unmarshal(body, &rec)
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		_ = json.NewEncoder(w).Encode(map[string]any{"double": rec["seq"].(float64) * 2})
	}))
	defer srv.Close()

	p := optest.Plan(t, `
pipeline "p" {
  source "gen" {
    kind  = "generate"
    count = 300
  }
  buffered "call" {
    from        = gen
    call        = "http"
    method      = "POST"
    url         = "`+srv.URL+`"
    concurrency = 10
    ordered     = true
  }
  sink "out" {
    from = call
    kind = "stdout"
  }
}`, "p")
	var out syncBuffer
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger(), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := flowruntime.Start(context.Background(), g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m != 10 {
		t.Errorf("the server saw at most %d requests at once, want exactly 10", m)
	}
	dec := json.NewDecoder(&out.buf)
	for i := 0; i < 300; i++ {
		var rec struct {
			Seq    int64 `json:"seq"`
			Result struct {
				Double int64 `json:"double"`
			} `json:"result"`
		}
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if rec.Seq != int64(i) || rec.Result.Double != 2*int64(i) {
			t.Fatalf("record %d = seq %d, result %d: want input order with each record's own result", i, rec.Seq, rec.Result.Double)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the stdout sink's writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
