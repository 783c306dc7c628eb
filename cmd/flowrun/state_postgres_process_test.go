package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/postgres/pgtest"
)

// These tests run the built binary with --state-dir against a private
// PostgreSQL, kill it with SIGKILL and run it again.

// filePostgresFlow reads in.jsonl (crashDir's input), keeps two records in
// three and inserts them into dst, a table without a key: a record
// written twice is a duplicate row.
const filePostgresFlow = `
pipeline "load" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  filter "some" {
    from  = in
    where = id %% 3 != 1
  }
  sink "db" {
    from  = some
    kind  = "postgres"
    dsn   = %q
    table = "dst"
  }
}
`

// TestRunPostgresSinkSurvivesKill9: file → filter → postgres with plain
// inserts, killed with SIGKILL at random moments, then run to the end:
// every record is a row once, and a run after the end inserts nothing.
func TestRunPostgresSinkSurvivesKill9(t *testing.T) {
	const lines = 500_000
	srv := pgtest.Start(t)
	bin := buildFlowrun(t)
	dir := crashDir(t, lines)
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(fmt.Sprintf(filePostgresFlow, srv.DSN())), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, `CREATE TABLE dst (id bigint NOT NULL, v text NOT NULL)`)
	want := int64(lines - (lines+1)/3) // ids with id % 3 != 1
	c := srv.Conn(t)
	rows := func() (count, distinct int64) {
		t.Helper()
		if err := c.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT id) FROM dst`).Scan(&count, &distinct); err != nil {
			t.Fatal(err)
		}
		return count, distinct
	}

	args := []string{"run", "--state-dir", "state", "--checkpoint-interval", "20ms", "--log-format", "json", "p.flow"}
	snapshot := filepath.Join(dir, "state", "load", "snapshot")
	killedMidRun := 0
	var skipped int64
	var logs []string // each run's log, shown when a check fails
	for i := range 5 {
		var stderr lockedBuffer
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Stderr = dir, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// The kill comes once the first snapshot is saved (which is
		// before the first row; TestRunPostgresSinkKilledAtItsFirstRows).
		var exitErr error
		ended, killed := false, false
		for !ended && !fileExists(snapshot) {
			select {
			case exitErr = <-exited:
				ended = true
			case <-time.After(time.Millisecond):
			}
		}
		if !ended {
			select {
			case exitErr = <-exited:
				ended = true
			case <-time.After(time.Duration(50+rand.IntN(400)) * time.Millisecond):
				_ = cmd.Process.Kill()
				killed = exitCode(<-exited) != 0
			}
		}
		if ended && exitErr != nil {
			t.Fatalf("run %d: %v\n%s", i, exitErr, stderr.String())
		}
		// What the restart skipped: the rows the run before had inserted
		// after its last snapshot.
		if e, ok := findLog(stderr.String(), "postgres sink: the run before wrote records after its last snapshot"); ok {
			skipped += e.int("skip")
		}
		logs = append(logs, stderr.String())
		count, distinct := rows()
		t.Logf("run %d: killed %v, %d rows (%d distinct)", i, killed, count, distinct)
		if count != distinct {
			t.Fatalf("after run %d: %d rows but %d distinct ids: some record was inserted twice; the runs' logs:\n%s",
				i, count, distinct, strings.Join(logs, "\n----\n"))
		}
		if killed {
			killedMidRun++
		}
	}
	if killedMidRun == 0 {
		t.Fatal("no run was killed before its end: the input is too small for this machine")
	}
	log := runOK(t, bin, dir, "--state-dir", "state", "p.flow")
	if e, ok := findLog(log, "postgres sink: the run before wrote records after its last snapshot"); ok {
		skipped += e.int("skip")
	}
	count, distinct := rows()
	if count != want || distinct != want {
		t.Fatalf("after %d kills dst has %d rows, %d distinct ids; want the %d records once each", killedMidRun, count, distinct, want)
	}
	var progress int64
	if err := c.QueryRow(context.Background(), `SELECT written FROM flowrun_sink_progress WHERE pipeline = 'load' AND stage = 'db'`).Scan(&progress); err != nil {
		t.Fatal(err)
	}
	if progress != want {
		t.Errorf("the progress row counts %d records, want %d", progress, want)
	}
	// A run after the end reads and inserts nothing.
	log = runOK(t, bin, dir, "--state-dir", "state", "p.flow")
	if e, ok := findLog(log, "pipeline finished"); !ok || e.int("records_in") != 0 || e.int("records_out") != 0 {
		t.Errorf("a run after the end: %v, want records_in=0 records_out=0\n%s", e, log)
	}
	if count, _ := rows(); count != want {
		t.Errorf("a run after the end left %d rows, want %d", count, want)
	}
	t.Logf("%d of 5 runs killed mid-run; the restarts skipped %d rows inserted after a snapshot; dst holds each of the %d records once",
		killedMidRun, skipped, want)
	if skipped == 0 {
		t.Errorf("no restart had rows to skip: no kill came between a snapshot and the rows after it, so the test showed nothing")
	}
}

// postgresFileFlow copies table src into out.jsonl, a page of 500 rows at
// a time.
const postgresFileFlow = `
pipeline "export" {
  source "src" {
    kind       = "postgres"
    dsn        = %q
    query      = "SELECT id, v FROM src"
    key        = "id"
    batch_size = 500
  }
  sink "out" {
    from = src
    kind = "file"
    path = "out.jsonl"
  }
}
`

// TestRunPostgresSourceResumes: postgres → file with a state dir, killed
// with SIGKILL midway and run again, holds every row once, in key order,
// and the second run reads only the rows after the saved key.
func TestRunPostgresSourceResumes(t *testing.T) {
	const n = 300_000
	srv := pgtest.Start(t)
	bin := buildFlowrun(t)
	srv.Exec(t, fmt.Sprintf(`CREATE TABLE src (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, %d) g;`, n))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(fmt.Sprintf(postgresFileFlow, srv.DSN())), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")

	cmd := exec.Command(bin, "run", "--state-dir", "state", "--checkpoint-interval", "20ms", "p.flow")
	cmd.Dir = dir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	eventually(t, "a quarter of the rows written", &stderr, func() bool {
		st, err := os.Stat(out)
		return err == nil && st.Size() > int64(n/4)*30
	})
	_ = cmd.Process.Kill()
	if err := cmd.Wait(); exitCode(err) == 0 {
		t.Fatal("the run ended before the kill: the table is too small for this machine")
	}
	before, _ := os.ReadFile(out)
	killedAt := bytes.Count(before, []byte("\n"))

	log := runOK(t, bin, dir, "--state-dir", "state", "p.flow")
	e, ok := findLog(log, "pipeline finished")
	if !ok || e.int("records_in") <= 0 || e.int("records_in") >= n {
		t.Errorf("the restart read %v rows: want only those after the saved key, not none and not all %d\n%s", e["records_in"], n, log)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	next := int64(1)
	for sc.Scan() {
		var rec struct {
			ID int64  `json:"id"`
			V  string `json:"v"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v: %q", next, err, sc.Text())
		}
		if rec.ID != next || rec.V != fmt.Sprintf("v%d", next) {
			t.Fatalf("line %d holds %s, want id %d (every row once, in key order)", next, strings.TrimSpace(sc.Text()), next)
		}
		next++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if next-1 != n {
		t.Fatalf("out.jsonl holds %d rows, want %d", next-1, n)
	}
	t.Logf("killed with %d lines written; the restart read %d rows; out.jsonl holds rows 1..%d once each", killedAt, e.int("records_in"), n)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestRunPostgresSinkKilledAtItsFirstRows kills a first run as soon as its
// first rows are inserted: the pipeline's first snapshot is saved before its
// sources emit anything, so it is there already, and the next run inserts
// none of those rows again.
func TestRunPostgresSinkKilledAtItsFirstRows(t *testing.T) {
	const lines = 200_000
	srv := pgtest.Start(t)
	bin := buildFlowrun(t)
	c := srv.Conn(t)
	for try := 1; try <= 5; try++ {
		dir := crashDir(t, lines)
		if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(fmt.Sprintf(filePostgresFlow, srv.DSN())), 0o644); err != nil {
			t.Fatal(err)
		}
		srv.Exec(t, `DROP TABLE IF EXISTS dst, flowrun_sink_progress; CREATE TABLE dst (id bigint NOT NULL, v text NOT NULL)`)
		snapshot := filepath.Join(dir, "state", "load", "snapshot")
		cmd := exec.Command(bin, "run", "--state-dir", "state", "--checkpoint-interval", "1h", "p.flow")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var written int64
		for written == 0 {
			_ = c.QueryRow(context.Background(), `SELECT count(*) FROM dst`).Scan(&written)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if !fileExists(snapshot) {
			t.Fatalf("try %d: %d rows inserted and no snapshot saved", try, written)
		}
		runOK(t, bin, dir, "--state-dir", "state", "p.flow")
		var count, distinct int64
		if err := c.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT id) FROM dst`).Scan(&count, &distinct); err != nil {
			t.Fatal(err)
		}
		if count != distinct {
			t.Errorf("try %d: killed with %d rows inserted: the next run inserted %d of them again", try, written, count-distinct)
		}
	}
}
