package all_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestMalformedInputFollowsOnError feeds a file with undecodable lines to a
// source under each on_error policy and checks where every line ends up and
// what is counted.
func TestMalformedInputFollowsOnError(t *testing.T) {
	const input = "{\"id\": 1}\n{oops}\n{\"id\": 2}\nnot json\n{\"id\": 3}\n"
	tests := []struct {
		policy      string
		wantErr     string
		wantGood    string
		wantRejects []string
		wantSkipped int64
	}{
		{policy: `on_error = "stop"`, wantErr: "in.jsonl:2: invalid JSON"},
		{policy: `on_error = "skip"`, wantGood: "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n", wantSkipped: 2},
		{
			policy:      "on_error = \"dead_letter\"\n    dead_letter = rejects",
			wantGood:    "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n",
			wantRejects: []string{`"line":"{oops}"`, `"line":"not json"`},
		},
	}
	for _, tt := range tests {
		t.Run(strings.Fields(tt.policy)[2], func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(input), 0o644); err != nil {
				t.Fatal(err)
			}
			src := `
pipeline "p" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
    ` + tt.policy + `
  }
  sink "good" {
    from = in
    kind = "file"
    path = "good.jsonl"
  }
  sink "rejects" {
    kind = "file"
    path = "rejects.jsonl"
  }
}`
			if !strings.Contains(tt.policy, "dead_letter") {
				src = strings.Replace(src, "sink \"rejects\" {\n    kind = \"file\"\n    path = \"rejects.jsonl\"\n  }\n", "", 1)
			}
			p := optest.Plan(t, src, "p")
			env := operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger(), Dir: dir}
			g, err := all.Registry().BuildGraph(p, env)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ex, err := flowruntime.Start(ctx, g, flowruntime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = ex.Wait()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Wait() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(dir, "good.jsonl")); got != tt.wantGood {
				t.Errorf("good records:\n%s\nwant\n%s", got, tt.wantGood)
			}
			in, ok := ex.Stats().Node("in")
			if !ok {
				t.Fatal("no stats for the source")
			}
			if in.Skipped != tt.wantSkipped || in.DeadLettered != int64(len(tt.wantRejects)) {
				t.Errorf("source counted %d skipped and %d dead-lettered, want %d and %d",
					in.Skipped, in.DeadLettered, tt.wantSkipped, len(tt.wantRejects))
			}
			if len(tt.wantRejects) == 0 {
				return
			}
			lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "rejects.jsonl"))), "\n")
			if len(lines) != len(tt.wantRejects) {
				t.Fatalf("rejects:\n%s\nwant %d lines", strings.Join(lines, "\n"), len(tt.wantRejects))
			}
			for i, want := range tt.wantRejects {
				if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"stage":"in"`) || !strings.Contains(lines[i], "invalid JSON") {
					t.Errorf("reject %d = %s, want %s with the stage and the error", i, lines[i], want)
				}
			}
		})
	}
}
