package kafka_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/internal/optest"
)

// TestTwoProcessesOneKilledWithSIGKILL runs the relay in two flowrun
// processes of one consumer group and kills one with SIGKILL: it neither
// commits nor leaves the group, so its partitions move to the other member
// only after the session timeout, which reads them again from the last
// commit. Every record must arrive at least once.
func TestTwoProcessesOneKilledWithSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowrun and runs two processes; not in -short")
	}
	bin := optest.BuildFlowrun(t)
	broker := cluster(t)
	const n = 50_000
	produce(t, broker, "in", n)
	out := read(t, broker, "out")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	type proc struct {
		name   string
		cmd    *exec.Cmd
		log    *bytes.Buffer
		exited chan struct{}
		err    error
	}
	var procs []*proc
	started := time.Now()
	for _, name := range []string{"a", "b"} {
		flow := filepath.Join(t.TempDir(), "relay.flow")
		// Paced, so that the first process cannot read every partition to
		// its end before the second has joined the group.
		src := strings.NewReplacer("${broker}", broker, "${process}", name, "${rate}", "5000").Replace(relay)
		if err := os.WriteFile(flow, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &proc{name: name, log: &bytes.Buffer{}, exited: make(chan struct{})}
		p.cmd = exec.CommandContext(ctx, bin, "run", flow)
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			p.err = p.cmd.Wait()
			close(p.exited)
		}()
		procs = append(procs, p)
	}
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
			<-p.exited
			if t.Failed() {
				t.Logf("%s:\n%s", p.name, p.log.String())
			}
		}
	}()

	optest.Eventually(t, 60*time.Second, "both processes writing and a third of the records", func() bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		return out.process["a"] > 0 && out.process["b"] > 0 && len(out.ids) >= n/3
	})
	b := procs[1]
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	t.Logf("SIGKILL b after %s with %d distinct records written", time.Since(started).Round(time.Millisecond), out.distinct())

	optest.Eventually(t, 60*time.Second, "every record written", func() bool { return out.distinct() >= n })
	elapsed := time.Since(started)
	a := procs[0]
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.exited:
		if a.err != nil {
			t.Errorf("a exited with %v after SIGTERM, want 0", a.err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("a did not exit within 30s of SIGTERM")
	}

	out.mu.Lock()
	defer out.mu.Unlock()
	for i := range n {
		if out.ids[i] == 0 {
			t.Fatalf("record %d never written", i)
		}
	}
	t.Logf("all %d records written: %d in out, %d duplicates (b's records written but not committed before SIGKILL)",
		n, out.total, out.total-len(out.ids))
	for _, name := range []string{"a", "b"} {
		t.Logf("share of %s: %d records (%.1f%%)", name, out.process[name], 100*float64(out.process[name])/float64(out.total))
	}
	t.Logf("two processes: %d records in %s = %.0f records/s (one killed, its partitions taken over after the 2s session timeout)",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
}
