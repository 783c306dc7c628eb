package supervisor_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/supervisor"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// crawlFlow is a pipeline whose drain cannot finish: a throttle of one
// record an hour lets its burst through, and the rest of the generator's
// batch waits in front of it.
const crawlFlow = `pipeline "crawl" {
  source "gen" {
    kind = "generate"
  }
  throttle "slow" {
    from  = gen
    rate  = 1
    per   = "1h"
    burst = 1
  }
  map "version" {
    from = slow
    set { v = %q }
  }
  sink "out" {
    from = version
    kind = "file"
    path = "out.jsonl"
  }
}
`

// startCrawl starts crawlFlow in dir under a supervisor with the given
// drain timeout, and waits until the first record is written, so that the
// rest are queued.
func startCrawl(t *testing.T, dir string, timeout time.Duration) (*supervisor.Supervisor, *syncBuffer) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "crawl.flow"), fmt.Sprintf(crawlFlow, "A"))
	logs := &syncBuffer{}
	sup := supervisor.New(supervisor.Config{
		Registry:     all.Registry(),
		Logger:       hclog.New(&hclog.LoggerOptions{Name: "flowrun", Output: logs, Level: hclog.Info}),
		Stdout:       &syncBuffer{},
		Load:         loader(dir, logs),
		DrainTimeout: timeout,
	})
	plan, ok := loader(dir, logs)()
	if !ok {
		t.Fatalf("plan:\n%s", logs)
	}
	if err := sup.Start(plan); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sup.Kill()
		_ = sup.Wait()
	})
	out := &tail{path: filepath.Join(dir, "out.jsonl")}
	waitFor(t, 10*time.Second, "the first record", func() bool { return len(out.poll(t)) > 0 })
	waitFor(t, 10*time.Second, "records queued", func() bool { return sup.InFlight() > 0 })
	return sup, logs
}

// waitEnded waits, for at most a generous bound, for sup to end.
func waitEnded(t *testing.T, sup *supervisor.Supervisor, logs *syncBuffer) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- sup.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("the supervisor still runs 20 s after the stop\n%s", logs)
		return nil
	}
}

// TestStopKillsAtTheDrainTimeout: Stop drains for at most DrainTimeout,
// then kills the pipeline; Wait says so and Abandoned counts what was in
// flight.
func TestStopKillsAtTheDrainTimeout(t *testing.T) {
	sup, logs := startCrawl(t, t.TempDir(), 100*time.Millisecond)
	inFlight := sup.InFlight()
	sup.Stop()
	err := waitEnded(t, sup, logs)
	var dt *flowruntime.DrainTimeoutError
	if !errors.As(err, &dt) || dt.Timeout != 100*time.Millisecond || dt.Pipeline != "crawl" {
		t.Fatalf("Wait = %v, want the drain timeout of pipeline crawl (100ms)\n%s", err, logs)
	}
	t.Logf("in flight at the stop: %d; %v", inFlight, err)
	if got := sup.Abandoned(); got == 0 || got != dt.Abandoned() {
		t.Errorf("Abandoned() = %d, want the error's %d, more than 0", got, dt.Abandoned())
	}
	if logs.count("drain timed out: pipeline killed") != 1 {
		t.Errorf("no log of the drain timeout:\n%s", logs)
	}
}

// TestKillIsAnError: a pipeline stopped at once ends with ErrKilled, and
// the records it abandoned are counted.
func TestKillIsAnError(t *testing.T) {
	sup, logs := startCrawl(t, t.TempDir(), 0)
	sup.Stop()
	sup.Kill()
	err := waitEnded(t, sup, logs)
	if !errors.Is(err, flowruntime.ErrKilled) {
		t.Fatalf("Wait = %v, want ErrKilled\n%s", err, logs)
	}
	if sup.Abandoned() == 0 || logs.count("pipeline killed") != 1 {
		t.Errorf("Abandoned() = %d; want more than 0 and a log line\n%s", sup.Abandoned(), logs)
	}
}

// TestHandoverKillsAnOldVersionAtTheDrainTimeout: a reload whose old
// version cannot drain kills it at the drain timeout and starts the new
// version, which resumes from the old one's checkpoint; the failed drain
// counts as an error of the run.
func TestHandoverKillsAnOldVersionAtTheDrainTimeout(t *testing.T) {
	dir := t.TempDir()
	sup, logs := startCrawl(t, dir, 100*time.Millisecond)
	writeFile(t, filepath.Join(dir, "crawl.flow"), fmt.Sprintf(crawlFlow, "B"))
	reloaded := make(chan error, 1)
	go func() { reloaded <- sup.Reload() }()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("Reload = %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Reload still running 20 s later\n%s", logs)
	}
	for _, want := range []string{"drain timed out: pipeline killed", "old version killed at its drain timeout", "pipeline changed: handed over"} {
		if logs.count(want) != 1 {
			t.Errorf("want one log line %q:\n%s", want, logs)
		}
	}
	out := &tail{path: filepath.Join(dir, "out.jsonl")}
	waitFor(t, 10*time.Second, "the new version's first record", func() bool {
		out.poll(t)
		return len(out.lines) > 0 && out.lines[len(out.lines)-1]["v"] == "B"
	})
	if sup.Abandoned() == 0 {
		t.Errorf("Abandoned() = 0 after the old version was killed")
	}
	sup.Kill()
	err := waitEnded(t, sup, logs)
	var dt *flowruntime.DrainTimeoutError
	if !errors.As(err, &dt) {
		t.Errorf("Wait = %v, want it to include the old version's drain timeout", err)
	}
}
