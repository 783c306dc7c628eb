package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExamplePipelinesRun runs every example in pipelines/ that needs no
// external service to completion and checks what it wrote. The examples that
// need PostgreSQL, WebSocket feeds or NATS are run by their connectors' tests.
func TestExamplePipelinesRun(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, dir string, stdout []map[string]any)
	}{
		{"error_alerts.flow", func(t *testing.T, dir string, stdout []map[string]any) {
			archive := readJSONL(t, filepath.Join(dir, "out/errors.jsonl"))
			if len(archive) != 8 || len(stdout) != 8 {
				t.Fatalf("archive has %d records and stdout %d, want the 8 errors in both", len(archive), len(stdout))
			}
			for i, r := range archive {
				msg, _ := r["msg"].(string)
				if r["level"] != "ERROR" || msg != strings.ToUpper(msg) || r["host"] != "local" {
					t.Errorf("archive record %d = %v, want an upper-cased ERROR from host local", i, r)
				}
			}
		}},
		{"log_aggregation.flow", func(t *testing.T, dir string, _ []map[string]any) {
			batches := readJSONL(t, filepath.Join(dir, "out/aggregated.jsonl"))
			total := 0
			for _, b := range batches {
				records, _ := b["records"].([]any)
				if n, _ := b["count"].(float64); int(n) != len(records) || len(records) > 8 {
					t.Errorf("batch %v: count does not match its records or exceeds the size 8", b)
				}
				for _, r := range records {
					if l := r.(map[string]any)["level"]; l != "warn" && l != "error" {
						t.Errorf("record with level %v passed the filter", l)
					}
				}
				total += len(records)
			}
			// app.log holds 16 warnings and errors, worker.log 12.
			if total != 28 {
				t.Errorf("%d records aggregated, want 28", total)
			}
		}},
		{"fanout.flow", func(t *testing.T, dir string, _ []map[string]any) {
			if n := len(readJSONL(t, filepath.Join(dir, "out/events.jsonl"))); n != 1000 {
				t.Errorf("archive has %d events, want all 1000", n)
			}
			a := readJSONL(t, filepath.Join(dir, "out/purchases_a.jsonl"))
			b := readJSONL(t, filepath.Join(dir, "out/purchases_b.jsonl"))
			if len(a)+len(b) != 200 {
				t.Errorf("shards hold %d + %d purchases, want 200 in all", len(a), len(b))
			}
			usersA := map[any]bool{}
			for _, r := range a {
				usersA[r["user"]] = true
			}
			for _, r := range b {
				if usersA[r["user"]] {
					t.Errorf("user %v is in both shards: hash fanout must keep a key on one branch", r["user"])
				}
			}
		}},
		{"parallel_requests.flow", func(t *testing.T, _ string, stdout []map[string]any) {
			words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima"}
			if len(stdout) != len(words) {
				t.Fatalf("%d results, want %d", len(stdout), len(words))
			}
			for i, r := range stdout {
				upper, _ := r["upper"].(map[string]any)
				if r["line"] != words[i] || upper["LINE"] != strings.ToUpper(words[i]) {
					t.Errorf("result %d = %v, want %s and its upper-cased copy, in input order", i, r, words[i])
				}
			}
		}},
		{"throttled.flow", func(t *testing.T, _ string, stdout []map[string]any) {
			if len(stdout) != 100 {
				t.Fatalf("%d records, want the first 100", len(stdout))
			}
			for i, r := range stdout {
				if n, _ := r["n"].(float64); int(n) != i {
					t.Fatalf("record %d = %v, want n = %d", i, r, i)
				}
			}
		}},
		{"generator.flow", func(t *testing.T, _ string, stdout []map[string]any) {
			var lines []string
			for _, r := range stdout {
				out, _ := json.Marshal(r)
				lines = append(lines, string(out))
			}
			slices.Sort(lines)
			want := []string{
				`{"bucket":"even4","n":0,"parity":0}`,
				`{"bucket":"other","n":1,"parity":1}`,
				`{"key":"even4","value":25}`,
				`{"key":"other","value":75}`,
			}
			if !slices.Equal(lines, want) {
				t.Errorf("stdout =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
		}},
		{"dead_letter.flow", func(t *testing.T, dir string, _ []map[string]any) {
			totals := readJSONL(t, filepath.Join(dir, "out/totals.jsonl"))
			rejects := readJSONL(t, filepath.Join(dir, "out/rejects.jsonl"))
			if len(totals) != 18 || len(rejects) != 2 {
				t.Fatalf("%d totals and %d rejects, want 18 and 2", len(totals), len(rejects))
			}
			for _, r := range totals {
				if r["cents"] != r["amount"].(float64)*100 {
					t.Errorf("total %v: cents is not amount * 100", r)
				}
			}
			for _, r := range rejects {
				if r["amount"] != "n/a" || r["stage"] != "in_cents" || !strings.Contains(r["error"].(string), "int(n/a)") {
					t.Errorf("reject %v: want the n/a amount with the error and the failing stage", r)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".flow"), func(t *testing.T) {
			dir := copyPipelines(t)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"run", "--log-level", "warn", filepath.Join(dir, tt.file)}, &stdout, &stderr)
			if code != exitOK {
				t.Fatalf("flowrun run %s: exit %d\n%s", tt.file, code, stderr.String())
			}
			tt.check(t, dir, parseJSONL(t, stdout.Bytes()))
		})
	}
}

// copyPipelines copies pipelines/ into a temporary directory, so runs write
// their out/ files there.
func copyPipelines(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../pipelines")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseJSONL(t, data)
}

func parseJSONL(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
