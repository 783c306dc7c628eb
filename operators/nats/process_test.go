package nats_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/internal/optest"
)

// proc is one flowrun process of the scale-out test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	// exited is closed once the process exited, with err its exit error.
	exited chan struct{}
	err    error
}

// TestThreeProcessesShareADurableConsumer runs pipelines/scale_out.flow in
// three flowrun processes on one durable consumer, kills one with SIGKILL
// midway, and checks that every one of 100,000 orders reached the ENRICHED
// stream at least once.
func TestThreeProcessesShareADurableConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowrun and runs three processes; not in -short")
	}
	bin := optest.BuildFlowrun(t)
	flow, err := filepath.Abs("../../pipelines/scale_out.flow")
	if err != nil {
		t.Fatal(err)
	}
	url := startServer(t)
	c := dial(t, url)
	c.stream("ORDERS", "orders.>")
	c.stream("ENRICHED", "enriched.>")
	const n = 100_000
	began := time.Now()
	c.publish("orders.new", 0, n)
	t.Logf("published %d orders in %s", n, time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	var procs []*proc
	for i := 1; i <= 3; i++ {
		p := &proc{name: fmt.Sprintf("p%d", i), stderr: &bytes.Buffer{}, exited: make(chan struct{})}
		p.cmd = exec.CommandContext(ctx, bin, "run",
			"--var", "url="+url, "--var", "process="+p.name, "--var", "ack_wait=2s", flow)
		p.cmd.Stderr = p.stderr
		p.cmd.Stdout = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", p.name, err)
		}
		go func() {
			p.err = p.cmd.Wait()
			close(p.exited)
		}()
		procs = append(procs, p)
	}
	started := time.Now()
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
			<-p.exited
			if t.Failed() {
				t.Logf("%s stderr:\n%s", p.name, tail(p.stderr.String(), 20))
			}
		}
	}()

	// Kill p2 once a third of the orders went through.
	optest.Eventually(t, 60*time.Second, "a third of the orders", func() bool { return c.count("ENRICHED") >= n/3 })
	killed := procs[1]
	if err := killed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", killed.name, err)
	}
	<-killed.exited
	killedAt := c.count("ENRICHED")
	unacked := c.consumerInfo("ORDERS", "enrich").NumAckPending
	t.Logf("SIGKILL %s after %s, with %d orders in ENRICHED and %d unacknowledged", killed.name,
		time.Since(started).Round(time.Millisecond), killedAt, unacked)

	optest.Eventually(t, 60*time.Second, "every order in ENRICHED", func() bool { return c.count("ENRICHED") >= n })
	elapsed := time.Since(started)
	optest.Eventually(t, 20*time.Second, "every order acknowledged", func() bool {
		info := c.consumerInfo("ORDERS", "enrich")
		return info.AckFloor.Stream == n && info.NumAckPending == 0
	})

	for _, p := range procs {
		if p == killed {
			continue
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("stop %s: %v", p.name, err)
		}
		select {
		case <-p.exited:
			if p.err != nil {
				t.Errorf("%s exited with %v after SIGTERM, want 0", p.name, p.err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not exit within 20s of SIGTERM", p.name)
		}
	}

	msgs := c.read("ENRICHED")
	seen := ids(msgs)
	if m := missing(seen, n); len(m) > 0 {
		t.Fatalf("%d distinct orders of %d reached ENRICHED; missing, e.g.: %v", len(seen), n, m)
	}
	share := map[string]int{}
	for _, m := range msgs {
		share[fmt.Sprint(m.fields["process"])]++
	}
	t.Logf("all %d orders arrived: %d messages in ENRICHED, %d duplicates (message ids let JetStream drop republished copies)",
		n, len(msgs), len(msgs)-len(seen))
	for _, p := range procs {
		t.Logf("share of %s: %d orders (%.1f%%); redelivered to it: %s", p.name, share[p.name],
			100*float64(share[p.name])/float64(len(msgs)), redeliveries(p.stderr.String()))
	}
	t.Logf("three processes: %d orders in %s = %.0f records/s (one killed after %d)", n,
		elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), killedAt)
}

// redeliveries returns the last redelivered_total a process logged.
func redeliveries(log string) string {
	last := "0"
	for _, line := range strings.Split(log, "\n") {
		if _, rest, ok := strings.Cut(line, "redelivered_total="); ok {
			last = strings.Fields(rest)[0]
		}
	}
	return last
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
