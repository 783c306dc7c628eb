package call_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/faulty"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// runFlow plans, builds and runs pipeline "p" of src to its end.
func runFlow(t *testing.T, src string) error {
	t.Helper()
	g, err := all.Registry().BuildGraph(optest.Plan(t, src, "p"), optest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	return optest.Start(t, g).Wait()
}

// TestHTTPRetryAfter: a transient answer (429, 503, ...) with Retry-After,
// seconds or an HTTP-date, asks the runtime to wait that long, as the http
// sink's does (retryafter parses the header for both); a permanent answer
// does not, nor one without a valid header.
func TestHTTPRetryAfter(t *testing.T) {
	clock := optest.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	// class is how the runtime's policy sees an error: after is the wait
	// it asks for, -1 for none.
	type class struct {
		permanent bool
		after     time.Duration
	}
	tests := []struct {
		answer faulty.Answer
		want   class
	}{
		{faulty.Answer{Status: 429, RetryAfter: "2"}, class{false, 2 * time.Second}},
		{faulty.Answer{Status: 503, RetryAfter: clock.Now().Add(3 * time.Second).Format(http.TimeFormat)}, class{false, 3 * time.Second}},
		{faulty.Answer{Status: 503, RetryAfter: "soon"}, class{false, -1}},
		{faulty.Answer{Status: 503}, class{false, -1}},
		{faulty.Answer{Status: 400, RetryAfter: "5"}, class{true, -1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %q", tt.answer.Status, tt.answer.RetryAfter), func(t *testing.T) {
			tg := faulty.NewServer(t).Fail(1, tt.answer)
			st := optest.Stage(t, "buffered", "buffered", "enrich", M{"call": "http", "url": fmt.Sprintf("%q", tg.URL), "method": "POST"})
			c := optest.Build(t, st, optest.Env(clock)).Caller
			_, err := c.Call(context.Background(), flowruntime.Record{Fields: M{"id": int64(1)}})
			if err == nil {
				t.Fatal("no error")
			}
			got := class{onerror.IsPermanent(err), -1}
			if after, ok := onerror.RetryAfterOf(err); ok {
				got.after = after
			}
			if got != tt.want {
				t.Errorf("error %v: %+v, want %+v", err, got, tt.want)
			}
		})
	}
}

// TestHTTPHonoursRetryAfter: a buffered http call answered 503 with
// Retry-After: 1 is tried again after that second, though its backoff
// would try again at once.
func TestHTTPHonoursRetryAfter(t *testing.T) {
	tg := faulty.NewServer(t).Fail(1, faulty.Answer{Status: 503, RetryAfter: "1"})
	err := runFlow(t, fmt.Sprintf(`
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 1
    template = { id: seq }
  }
  buffered "enrich" {
    from              = gen
    call              = "http"
    url               = %q
    method            = "POST"
    on_error          = "retry"
    retry_backoff     = "1ms"
    retry_max_backoff = "2s"
  }
  sink "out" {
    from = enrich
    kind = "discard"
  }
}`, tg.URL))
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	reqs := tg.Requests()
	if len(reqs) != 2 || !slices.Equal(tg.Accepted(), []int64{0}) {
		t.Fatalf("%d requests, accepted %v: want 2 (a 503, then one accepted) and [0]", len(reqs), tg.Accepted())
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 900*time.Millisecond {
		t.Errorf("retried after %v, want the 1s the target asked for", gap)
	}
}

// TestExecClassifies: an exec call's error is permanent, and never
// retried, where trying again cannot change it: a record that cannot be
// encoded as the command's input, a command that cannot be run (not found,
// not executable), and an exit status of 126 or 127 (the shell's "cannot
// run" and "not found") or 65 (EX_DATAERR, the command's way to say the
// record is bad). Any other failure may pass on another try: another exit
// status, a signal, a timeout. A persistent command is classified the same
// way, by the status its copy ended with.
func TestExecClassifies(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noexec.sh"), []byte("#!/bin/sh\ncat\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		command       []string
		rec           M
		wantPermanent bool
	}{
		{"a record with +Inf", []string{"cat"}, M{"x": math.Inf(1)}, true},
		{"a record with NaN", []string{"cat"}, M{"x": math.NaN()}, true},
		{"not on the PATH", []string{"flowrun-no-such-command"}, M{}, true},
		{"no such file", []string{"./no-such-command"}, M{}, true},
		{"not executable", []string{"./noexec.sh"}, M{}, true},
		{"exit 127", []string{"sh", "-c", "read l; exit 127"}, M{}, true},
		{"exit 126", []string{"sh", "-c", "read l; exit 126"}, M{}, true},
		{"exit 65", []string{"sh", "-c", "read l; echo bad record >&2; exit 65"}, M{}, true},
		{"exit 1", []string{"sh", "-c", "read l; exit 1"}, M{}, false},
		{"exit 75", []string{"sh", "-c", "read l; exit 75"}, M{}, false},
		{"killed", []string{"sh", "-c", "read l; kill -9 $$"}, M{}, false},
		{"timed out", []string{"sleep", "10"}, M{}, false},
	}
	for _, persistent := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s persistent=%t", tt.name, persistent), func(t *testing.T) {
				env := optest.Env(nil)
				env.Dir = dir
				st := optest.Stage(t, "buffered", "buffered", "enrich", M{"call": "exec", "command": tt.command,
					"persistent": persistent, "timeout": 200 * time.Millisecond})
				c := optest.Build(t, st, env).Caller
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel() // stops a persistent command's copies
				_, err := c.Call(ctx, flowruntime.Record{Fields: tt.rec})
				if err == nil {
					t.Fatal("no error")
				}
				if onerror.IsPermanent(err) != tt.wantPermanent {
					t.Errorf("error %v: permanent %v, want %v", err, onerror.IsPermanent(err), tt.wantPermanent)
				}
			})
		}
	}
}

// TestExecPermanentIsNotRetried: through the runtime, under skip with
// five tries, a record the command's input cannot hold
// and a command not found are skipped at once, while a failing command is
// tried five times.
func TestExecPermanentIsNotRetried(t *testing.T) {
	tests := []struct {
		name, template string
		command        string
		wantRetries    int64
	}{
		{"+Inf", "{ x: 1.0 / 0.0 }", `["cat"]`, 0},
		{"not found", "{ id: seq }", `["flowrun-no-such-command"]`, 0},
		{"exit 127", "{ id: seq }", `["sh", "-c", "exit 127"]`, 0},
		{"exit 1", "{ id: seq }", `["sh", "-c", "exit 1"]`, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := all.Registry().BuildGraph(optest.Plan(t, fmt.Sprintf(`
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 1
    template = %s
  }
  buffered "enrich" {
    from              = gen
    call              = "exec"
    command           = %s
    on_error          = "skip"
    retry_attempts    = 5
    retry_backoff     = "1ms"
    retry_max_backoff = "2ms"
  }
  sink "out" {
    from = enrich
    kind = "discard"
  }
}`, tt.template, tt.command), "p"), optest.Env(nil))
			if err != nil {
				t.Fatal(err)
			}
			ex := optest.Start(t, g)
			if err := ex.Wait(); err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			st, _ := ex.Stats().Node("enrich")
			if st.Retries != tt.wantRetries || st.Skipped != 1 {
				t.Errorf("retries %d, skipped %d; want %d and 1", st.Retries, st.Skipped, tt.wantRetries)
			}
		})
	}
}
