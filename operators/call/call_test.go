package call_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

type M = map[string]any

func caller(t *testing.T, opts M) flowruntime.Caller {
	t.Helper()
	return callerTB(t, opts)
}

func callerTB(t testing.TB, opts M) flowruntime.Caller {
	t.Helper()
	n := optest.Build(t, optest.Stage(t, "buffered", "buffered", "enrich", opts), optest.Env(nil))
	if n.Caller == nil {
		t.Fatal("buffered built no caller")
	}
	return n.Caller
}

func call(t *testing.T, c flowruntime.Caller, fields M) (M, error) {
	t.Helper()
	out, err := c.Call(context.Background(), flowruntime.Record{Fields: fields})
	return out.Fields, err
}

func TestExec(t *testing.T) {
	tests := []struct {
		name string
		opts M
		in   M
		want M
	}{
		{"json echo", M{"command": []string{"cat"}}, M{"id": int64(1), "s": "x"},
			M{"id": int64(1), "s": "x", "result": M{"id": int64(1), "s": "x"}}},
		{"text", M{"command": []string{"tr", "a-z", "A-Z"}, "as": "upper", "response": "text"}, M{"s": "abc"},
			M{"s": "abc", "upper": `{"S":"ABC"}`}},
		{"auto falls back to text", M{"command": []string{"sh", "-c", "echo not json"}}, M{},
			M{"result": "not json"}},
		{"auto parses numbers", M{"command": []string{"sh", "-c", "echo 42"}}, M{},
			M{"result": int64(42)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := M{"call": "exec"}
			for k, v := range tt.opts {
				opts[k] = v
			}
			got, err := call(t, caller(t, opts), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecErrors(t *testing.T) {
	c := caller(t, M{"call": "exec", "command": []string{"sh", "-c", "echo broken >&2; exit 3"}})
	if _, err := call(t, c, M{}); err == nil || !strings.Contains(err.Error(), "exit status 3: broken") {
		t.Errorf("failing command: %v", err)
	}
	c = caller(t, M{"call": "exec", "command": []string{"sh", "-c", "echo '{bad'"}, "response": "json"})
	if _, err := call(t, c, M{}); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Errorf("bad JSON with response = json: %v", err)
	}
	c = caller(t, M{"call": "exec", "command": []string{"sleep", "10"}, "timeout": 50 * time.Millisecond})
	start := time.Now()
	if _, err := call(t, c, M{}); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("slow command: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
	for _, opts := range []M{
		{"call": "exec"},
		{"call": "exec", "command": []string{"cat"}, "url": "\"http://x\""},
		{"call": "http"},
		{"call": "http", "url": "\"http://x\"", "command": []string{"cat"}},
		{"call": "exec", "command": []string{"cat"}, "concurrency": 0},
	} {
		if _, err := all.Registry().Build(optest.Stage(t, "buffered", "buffered", "b", opts), optest.Env(nil)); err == nil {
			t.Errorf("buffered %v built, want an error", opts)
		}
	}
}

func TestHTTP(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Token")+" "+r.Header.Get("Content-Type")+" "+string(body))
		mu.Unlock()
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "nope", http.StatusTeapot)
		case "/busy":
			http.Error(w, "later", http.StatusServiceUnavailable)
		case "/text":
			io.WriteString(w, "plain\n")
		default:
			io.WriteString(w, `{"country": "NL", "score": 7}`)
		}
	}))
	defer srv.Close()

	c := caller(t, M{"call": "http", "url": `"` + srv.URL + `/geo/" + ip`, "headers": M{"X-Token": "secret"}, "as": "geo"})
	out, err := call(t, c, M{"ip": "1.2.3.4"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(M{"ip": "1.2.3.4", "geo": M{"country": "NL", "score": int64(7)}}, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c = caller(t, M{"call": "http", "url": `"` + srv.URL + `/post"`, "method": "post"})
	if _, err := call(t, c, M{"b": int64(1), "a": "x"}); err != nil {
		t.Fatal(err)
	}
	c = caller(t, M{"call": "http", "url": `"` + srv.URL + `/text"`, "method": "PUT", "body": `"raw " + a`})
	if out, err := call(t, c, M{"a": "x"}); err != nil || out["result"] != "plain" {
		t.Errorf("text response: %v, %v", out, err)
	}
	c = caller(t, M{"call": "http", "url": `"` + srv.URL + `/fail"`})
	if _, err := call(t, c, M{}); err == nil || !strings.Contains(err.Error(), "418") || !strings.Contains(err.Error(), "nope") || !onerror.IsPermanent(err) {
		t.Errorf("a 418 answer: %v, want a permanent error", err)
	}
	c = caller(t, M{"call": "http", "url": `"` + srv.URL + `/busy"`})
	if _, err := call(t, c, M{}); err == nil || !strings.Contains(err.Error(), "503") || onerror.IsPermanent(err) {
		t.Errorf("a 503 answer: %v, want an error worth retrying", err)
	}
	want := []string{
		"GET /geo/1.2.3.4 secret  ",
		`POST /post  application/json {"a":"x","b":1}`,
		"PUT /text   raw x",
		"GET /fail   ",
		"GET /busy   ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestConcurrentCalls runs as many calls at once as the runtime would and
// checks that they overlap and do not share state.
func TestConcurrentCalls(t *testing.T) {
	var inFlight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		io.WriteString(w, strings.TrimPrefix(r.URL.Path, "/"))
	}))
	defer srv.Close()
	c := caller(t, M{"call": "http", "url": `"` + srv.URL + `/" + string(i)`, "concurrency": 4, "ordered": false})
	if c.Concurrency() != 4 || c.Ordered() {
		t.Errorf("Concurrency %d, Ordered %v", c.Concurrency(), c.Ordered())
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := call(t, c, M{"i": int64(i)})
			if err != nil || out["result"] != int64(i) {
				t.Errorf("call %d: %v, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	if peak.Load() < 2 {
		t.Errorf("at most %d calls overlapped", peak.Load())
	}
}
