package supervisor_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/supervisor"
)

const statusFlow = `pipeline "follow" {
  source "in" {
    kind          = "file"
    path          = "in.log"
    follow        = true
    poll_interval = "2ms"
  }
  sink "out" {
    from = in
    kind = "discard"
  }
}
`

// TestStatusReadyAndReloads follows a supervisor through its life: not
// ready before Start, ready and running after, a rejected and an applied
// reload counted, and after Stop not ready, its pipeline draining and then
// finished.
func TestStatusReadyAndReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.flow")
	writeFile(t, path, statusFlow)
	writeFile(t, filepath.Join(dir, "in.log"), "a\nb\n")
	sup, logs := newSupervisor(t, dir)
	if sup.Ready() {
		t.Error("ready before Start")
	}
	if _, ok := sup.Status("follow"); ok {
		t.Error("a status before Start")
	}
	plan, ok := loader(dir, logs)()
	if !ok {
		t.Fatal(logs)
	}
	if err := sup.Start(plan); err != nil {
		t.Fatal(err)
	}
	if !sup.Ready() {
		t.Error("not ready after Start")
	}
	if st, ok := sup.Status("follow"); !ok || st != supervisor.Running {
		t.Errorf("status %v %v, want running", st, ok)
	}
	if ex, ok := sup.Execution("follow"); !ok || ex == nil {
		t.Fatal("no execution of the running pipeline")
	}
	writeFile(t, path, "pipeline {")
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, statusFlow)
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, want := sup.Reloads(), (supervisor.ReloadCounts{Applied: 1, Rejected: 1}); got != want {
		t.Errorf("reloads %+v, want %+v", got, want)
	}
	sup.Stop()
	if sup.Ready() {
		t.Error("ready after Stop")
	}
	waitFor(t, 10*time.Second, "the pipeline to finish", func() bool {
		st, _ := sup.Status("follow")
		return st == supervisor.Finished
	})
	if err := sup.Wait(); err != nil {
		t.Fatal(err)
	}
	if s := supervisor.Draining.String(); s != "draining" {
		t.Errorf("Draining.String() = %q", s)
	}
}
