package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/postgres"
	"github.com/flowrun/flowrun/operators/postgres/pgtest"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// copyFlow copies table src to table dst through a filter and a map. Its
// one argument is the DSN.
const copyFlow = `
pipeline "copy" {
  edge_capacity = 1024

  source "src" {
    kind       = "postgres"
    dsn        = %q
    query      = "SELECT id, name, amount FROM src"
    key        = "id"
    batch_size = 500
  }
  filter "keep" {
    from  = src
    where = id %% 3 != 0
  }
  map "shape" {
    from = keep
    set {
      label   = upper(name)
      doubled = id * 2
    }
  }
  sink "dst" {
    from    = shape
    kind    = "postgres"
    dsn     = %q
    table   = "dst"
    columns = ["id", "label", "amount", "doubled"]
  }
}
`

const srcBatch = 500

// prepareCopy creates src with n rows and an empty dst.
func prepareCopy(t *testing.T, srv *pgtest.Server, n int) {
	t.Helper()
	srv.Exec(t, fmt.Sprintf(`DROP TABLE IF EXISTS src, dst;
CREATE TABLE src (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO src SELECT g, 'name ' || g, g * 0.5 FROM generate_series(1, %d) g;
CREATE TABLE dst (id bigint PRIMARY KEY, label text NOT NULL, amount float8 NOT NULL, doubled bigint NOT NULL);
ANALYZE src;`, n))
}

// checkCopy checks that dst holds exactly the rows of src that pass the
// filter, each mapped.
func checkCopy(t *testing.T, srv *pgtest.Server, n int) {
	t.Helper()
	third := int64(n / 3)
	kept := int64(n) - third
	sumID := int64(n)*int64(n+1)/2 - 3*third*(third+1)/2
	var count, ids, doubled, matching int64
	var amount float64
	c := srv.Conn(t)
	err := c.QueryRow(context.Background(), `SELECT count(*), coalesce(sum(id), 0)::int8, coalesce(sum(doubled), 0)::int8,
  coalesce(sum(amount), 0), (SELECT count(*) FROM dst d JOIN src s USING (id)
  WHERE d.label = upper(s.name) AND d.amount = s.amount::float8 AND d.doubled = 2 * s.id AND s.id % 3 <> 0)
FROM dst`).Scan(&count, &ids, &doubled, &amount, &matching)
	if err != nil {
		t.Fatal(err)
	}
	if count != kept || matching != kept {
		t.Errorf("dst holds %d rows, %d of them matching their src row; want %d", count, matching, kept)
	}
	if ids != sumID || doubled != 2*sumID || amount != float64(sumID)/2 {
		t.Errorf("sums of id, doubled, amount = %d, %d, %v; want %d, %d, %v", ids, doubled, amount, sumID, 2*sumID, float64(sumID)/2)
	}
}

// TestCopyInProcess copies a table through the real planner and runtime
// and measures how many rows are fetched but not finished: never more than
// the plan's bound plus one page.
func TestCopyInProcess(t *testing.T) {
	n := 1_000_000
	if raceEnabled || testing.Short() {
		n = 100_000
	}
	srv := pgtest.Start(t)
	prepareCopy(t, srv, n)

	p := optest.Plan(t, fmt.Sprintf(copyFlow, srv.DSN(), srv.DSN()), "copy")
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var src *postgres.Source
	var dst *postgres.Sink
	for _, node := range g.Nodes {
		switch node.Name {
		case "src":
			src = node.Source.(*postgres.Source)
		case "dst":
			dst = node.Sink.(*postgres.Sink)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	ex, err := flowruntime.Start(ctx, g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ex.Wait() }()
	// Rows fetched but not finished = fetched - written - filtered out.
	// fetched is read first, so the difference never counts a row twice.
	var worst, samples int64
	measure := func() {
		fetched := src.Fetched()
		st := ex.Stats()
		var filtered int64
		for _, ns := range st.Nodes {
			if ns.Name == "keep" {
				filtered = ns.In - ns.Out
			}
		}
		if d := fetched - dst.Written() - filtered; d > worst {
			worst = d
		}
		samples++
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		case <-tick.C:
			measure()
		}
	}
	elapsed := time.Since(start)
	st := ex.Stats()
	bound := int64(p.Bound.Records + srcBatch)
	t.Logf("%d rows in %v (%.0f rows/s); at most %d rows fetched and not finished (bound %d, %d samples); peak in flight on edges %d (plan bound %d)",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), worst, bound, samples, st.PeakInFlight, p.Bound.Records)
	if worst > bound {
		t.Errorf("%d rows were fetched and not finished at once, more than the plan's bound %d plus one page %d", worst, p.Bound.Records, srcBatch)
	}
	if worst <= 0 || samples < 10 {
		t.Errorf("the measure saw nothing in flight (%d samples, worst %d)", samples, worst)
	}
	if st.PeakInFlight > int64(p.Bound.Records) {
		t.Errorf("peak in flight %d is above the plan's bound %d", st.PeakInFlight, p.Bound.Records)
	}
	if src.Fetched() != int64(n) {
		t.Errorf("fetched %d rows, want %d", src.Fetched(), n)
	}
	if key := src.Checkpoint(); key != int64(n) {
		t.Errorf("checkpoint at the end = %v; want %d", key, n)
	}
	checkCopy(t, srv, n)
}

// TestCopyMillionRowsBinary copies 1,000,000 rows with the flowrun binary,
// built without the race detector, and checks the child's peak RSS.
func TestCopyMillionRowsBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("copies a million rows through a built flowrun binary; skipped with -short")
	}
	const n = 1_000_000
	const maxRSS = 100 << 20
	srv := pgtest.Start(t)
	bin := optest.BuildFlowrun(t)
	prepareCopy(t, srv, n)
	flow := filepath.Join(t.TempDir(), "copy.flow")
	if err := os.WriteFile(flow, []byte(fmt.Sprintf(copyFlow, srv.DSN(), srv.DSN())), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--log-level", "info", flow)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// VmHWM is the peak RSS of the child's own memory since its exec.
	// Rusage's Maxrss also counts the image the child shared with this
	// process before its exec (vfork), so it is only an upper bound.
	var hwm int64
	exited, polled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if kb := vmHWM(cmd.Process.Pid); kb > 0 {
				hwm = kb * 1024
			}
			select {
			case <-exited:
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(exited)
	<-polled
	if err != nil {
		t.Fatalf("flowrun run: %v\n%s", err, stderr.String())
	}
	elapsed := time.Since(start)
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatalf("no rusage for the child: %T", cmd.ProcessState.SysUsage())
	}
	// Maxrss (kilobytes on Linux) is the child's peak unless it is only the
	// image shared with this process before exec: then take VmHWM.
	maxrss, self := ru.Maxrss*1024, vmHWM(os.Getpid())*1024
	rss := maxrss
	if maxrss <= self && hwm > 0 {
		rss = hwm
	}
	t.Logf("flowrun copied %d rows in %v (%.0f rows/s); child peak RSS %.1f MiB (rusage Maxrss %.1f MiB, child VmHWM %.1f MiB, this process %.1f MiB)",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
		float64(rss)/(1<<20), float64(maxrss)/(1<<20), float64(hwm)/(1<<20), float64(self)/(1<<20))
	if rss > maxRSS || rss <= 0 {
		t.Errorf("child peak RSS %.1f MiB, want under %d MiB", float64(rss)/(1<<20), maxRSS>>20)
	}
	if !regexp.MustCompile(`every page read is acknowledged: checkpoint=1000000`).MatchString(stderr.String()) {
		t.Errorf("the source did not log its final checkpoint:\n%s", stderr.String())
	}
	checkCopy(t, srv, n)
}

// TestRestartDuringRun restarts PostgreSQL while a pipeline reads from it
// and upserts into it: both ends reconnect, and every row is written
// exactly once.
func TestRestartDuringRun(t *testing.T) {
	const n = 50000
	srv := pgtest.Start(t)
	srv.Exec(t, fmt.Sprintf(`CREATE TABLE src (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, %d) g;
CREATE TABLE dst (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL DEFAULT 0);`, n))
	flow := fmt.Sprintf(`
pipeline "p" {
  source "src" {
    kind              = "postgres"
    dsn               = %q
    query             = "SELECT id, v FROM src"
    key               = "id"
    batch_size        = 200
    retry_attempts    = 100
    retry_backoff     = "20ms"
    retry_max_backoff = "200ms"
  }
  sink "dst" {
    from              = src
    kind              = "postgres"
    dsn               = %q
    table             = "dst"
    columns           = ["id", "v"]
    upsert_key        = ["id"]
    retry_attempts    = 100
    retry_backoff     = "20ms"
    retry_max_backoff = "200ms"
  }
}
`, srv.DSN(), srv.DSN())
	var logs bytes.Buffer
	ex, dst := startWithSink(t, flow, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	started := time.Now()
	waitFor(t, func() bool { return dst.Written() >= n/4 })
	restartAt := time.Since(started)
	srv.Restart()
	restarted := time.Since(started)
	before := dst.Written()
	if before >= n {
		t.Fatalf("the run wrote all %d rows before the restart finished; slow it down", before)
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	st := ex.Stats()
	var retries int64
	for _, ns := range st.Nodes {
		retries += ns.Retries
	}
	t.Logf("restart at %v, server up again at %v, run ended at %v; written before the restart returned: %d; retries: %d",
		restartAt.Round(time.Millisecond), restarted.Round(time.Millisecond), time.Since(started).Round(time.Millisecond), before, retries)
	if retries == 0 {
		t.Errorf("no write was retried: the restart did not hit the run")
	}
	if !strings.Contains(logs.String(), "postgres source: retrying") {
		t.Errorf("the source did not reconnect:\n%s", logs.String())
	}
	var count, distinct, sum, matching int64
	err := srv.Conn(t).QueryRow(context.Background(), `SELECT count(*), count(DISTINCT id), sum(id)::int8,
  (SELECT count(*) FROM dst JOIN src USING (id, v)) FROM dst`).Scan(&count, &distinct, &sum, &matching)
	if err != nil {
		t.Fatal(err)
	}
	if count != n || distinct != n || sum != int64(n)*(n+1)/2 || matching != n {
		t.Errorf("dst: %d rows, %d distinct, sum %d, %d matching src; want %d rows once each", count, distinct, sum, matching, n)
	}
}

// TestPermanentErrorsDeadLetter checks that a batch PostgreSQL refuses for
// its data goes to the dead-letter sink at once, without retries, and the
// other batches are written.
func TestPermanentErrorsDeadLetter(t *testing.T) {
	srv := pgtest.Start(t)
	srv.Exec(t, `CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL)`)
	dir := t.TempDir()
	flow := fmt.Sprintf(`
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 1000
    template = {id: seq, name: seq == 700 ? null : "p" + string(seq)}
  }
  sink "db" {
    from           = gen
    kind           = "postgres"
    dsn            = %q
    table          = "people"
    on_error       = "dead_letter"
    dead_letter    = rejects
    retry_attempts = 50
  }
  sink "rejects" {
    kind = "file"
    path = "rejects.jsonl"
  }
}
`, srv.DSN())
	p := optest.Plan(t, flow, "p")
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger(), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ex, err := flowruntime.Start(ctx, g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	var db flowruntime.NodeStats
	for _, ns := range ex.Stats().Nodes {
		if ns.Name == "db" {
			db = ns
		}
	}
	rejects, err := os.ReadFile(filepath.Join(dir, "rejects.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(rejects), "\n")
	var written int64
	if err := srv.Conn(t).QueryRow(context.Background(), `SELECT count(*) FROM people`).Scan(&written); err != nil {
		t.Fatal(err)
	}
	if db.Retries != 0 || db.DeadLettered == 0 || int64(lines) != db.DeadLettered || written+db.DeadLettered != 1000 {
		t.Errorf("retries %d, dead-lettered %d, rejects file %d lines, table %d rows; want no retry and every record either written or rejected",
			db.Retries, db.DeadLettered, lines, written)
	}
	if !strings.Contains(string(rejects), `"id":700`) || !strings.Contains(string(rejects), "not-null") {
		t.Errorf("the rejects do not hold record 700 with its error:\n%.500s", rejects)
	}
}

// vmHWM returns the peak RSS in kilobytes of process pid, from
// /proc/pid/status, or 0.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb)
			return kb
		}
	}
	return 0
}

// TestDBExportExample runs pipelines/db_export.flow against a private
// server, its dsn given as a --var would be, and checks the CSV it writes.
func TestDBExportExample(t *testing.T) {
	srv := pgtest.Start(t)
	srv.Exec(t, `CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL);
INSERT INTO orders SELECT g, 'c' || (g % 7), CASE WHEN g % 4 = 0 THEN 0 ELSE g * 1.5 END FROM generate_series(1, 2000) g;`)
	src, err := os.ReadFile("../../pipelines/db_export.flow")
	if err != nil {
		t.Fatal(err)
	}
	f, diags := lang.Parse("db_export.flow", src)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	plan, diags := planner.Build([]*ast.File{f}, all.Registry(), map[string]string{"dsn": srv.DSN()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	dir := t.TempDir()
	g, err := all.Registry().BuildGraph(plan.Pipelines[0], operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger(), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ex, err := flowruntime.Start(ctx, g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out/orders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != "amount,customer,id" || len(lines) != 1+1500 {
		t.Fatalf("CSV has header %q and %d rows, want amount,customer,id and 1500 paid orders", lines[0], len(lines)-1)
	}
	if lines[1] != "1.5,c1,1" || lines[1500] != "2998.5,c4,1999" {
		t.Errorf("first and last rows %q and %q, want 1.5,c1,1 and 2998.5,c4,1999", lines[1], lines[1500])
	}
}

// startWithSink plans and starts the pipeline "p" of flow, logging to
// logger, with two minutes to run, and returns it with its postgres sink
// "dst".
func startWithSink(t *testing.T, flow string, logger hclog.Logger) (*flowruntime.Execution, *postgres.Sink) {
	t.Helper()
	p := optest.Plan(t, flow, "p")
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	var dst *postgres.Sink
	for _, node := range g.Nodes {
		if node.Name == "dst" {
			dst = node.Sink.(*postgres.Sink)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ex, err := flowruntime.Start(ctx, g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ex, dst
}
