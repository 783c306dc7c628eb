package sink_test

import (
	"bytes"
	"context"
	"io"
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

// previous is what an earlier run left in the output file.
const previous = "{\"n\":1}\n{\"n\":2}\n"

// TestFileKeepsPreviousOutputUntilFirstRecord checks that a file sink
// without append leaves the previous output byte-identical when the run
// fails or is killed before the first record reaches it, and that a run
// that ends without failing replaces it, even with no record at all.
func TestFileKeepsPreviousOutputUntilFirstRecord(t *testing.T) {
	tests := []struct {
		name string
		// source is the source block, named in; input is written to
		// in.jsonl first when not nil.
		source string
		input  *string
		// kill kills the execution once it runs instead of waiting for it.
		kill    bool
		wantErr string
		want    string
	}{
		{
			name:    "source fails before its first record",
			source:  `source "in" { kind = "file", path = "missing.jsonl", codec = "json" }`,
			wantErr: "no such file or directory",
			want:    previous,
		},
		{
			name:    "bad first line",
			source:  `source "in" { kind = "file", path = "in.jsonl", codec = "json" }`,
			input:   ptr("nope\n"),
			wantErr: "invalid JSON",
			want:    previous,
		},
		{
			name:   "killed before the first record",
			source: `source "in" { kind = "stdin", codec = "json" }`,
			kill:   true,
			want:   previous,
		},
		{
			name:   "successful run with no record",
			source: `source "in" { kind = "file", path = "in.jsonl", codec = "json" }`,
			input:  ptr(""),
			want:   "",
		},
		{
			name:   "successful run with records",
			source: `source "in" { kind = "file", path = "in.jsonl", codec = "json" }`,
			input:  ptr("{\"n\":3}\n"),
			want:   "{\"n\":3}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.jsonl")
			if err := os.WriteFile(out, []byte(previous), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.input != nil {
				if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(*tt.input), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			src := strings.ReplaceAll(tt.source, ", ", "\n") // one attribute per line
			p := optest.Plan(t, "pipeline \"p\" {\n"+src+"\nsink \"out\" {\nfrom = in\nkind = \"file\"\npath = \"out.jsonl\"\n}\n}\n", "p")
			stdin, feed := io.Pipe()
			defer feed.Close()
			env := operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger(), Dir: dir, Stdin: stdin}
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
			if tt.kill {
				ex.Kill()
				feed.Close() // lets the stdin reader return
			}
			err = ex.Wait()
			switch {
			case tt.kill:
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run: %v, want an error containing %q", err, tt.wantErr)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("output holds %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFileAppendAfterPartialLine checks that an appending sink that finds
// the file ending in an incomplete line starts on a new line, so no record
// is glued onto it, and warns once; a complete or empty file gets nothing
// added and no warning.
func TestFileAppendAfterPartialLine(t *testing.T) {
	tests := []struct {
		name     string
		codec    string
		existing string
		resume   bool
		want     string
		warns    int
	}{
		{"partial last line", "jsonl", "{\"n\":1}\n{\"n\":", false, "{\"n\":1}\n{\"n\":\n{\"n\":3}\n{\"n\":4}\n", 1},
		{"partial only line", "jsonl", "{\"n", false, "{\"n\n{\"n\":3}\n{\"n\":4}\n", 1},
		{"complete last line", "jsonl", "{\"n\":1}\n", false, "{\"n\":1}\n{\"n\":3}\n{\"n\":4}\n", 0},
		{"empty file", "jsonl", "", false, "{\"n\":3}\n{\"n\":4}\n", 0},
		{"partial csv row", "csv", "n\n1\n2", false, "n\n1\n2\n3\n4\n", 1},
		{"hot-reload handover", "jsonl", "{\"n\":1}\n{", true, "{\"n\":1}\n{\n{\"n\":3}\n{\"n\":4}\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out")
			if err := os.WriteFile(path, []byte(tt.existing), 0o644); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			env := optest.Env(nil)
			env.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
			env.Resume = tt.resume
			opts := M{"path": path, "codec": tt.codec, "append": !tt.resume}
			writeAll(t, build(t, "file", opts, env), optest.Records(M{"n": int64(3)}), optest.Records(M{"n": int64(4)}))
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("file holds %q, want %q", got, tt.want)
			}
			if n := strings.Count(logs.String(), "[WARN]"); n != tt.warns {
				t.Errorf("%d warnings, want %d:\n%s", n, tt.warns, logs.String())
			} else if n > 0 && !strings.Contains(logs.String(), path) {
				t.Errorf("the warning does not name the file:\n%s", logs.String())
			}
		})
	}
}

// TestFileAppendRetryAfterPartialLine checks that the new line started
// after a partial one belongs to the first successful write: a failed
// write cuts it back with its records, and the retry writes it once.
func TestFileAppendRetryAfterPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(path, []byte("{\"n\":1"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := build(t, "file", M{"path": path, "append": true}, optest.Env(nil))
	ctx := context.Background()
	// An unencodable record alone is a failed write that leaves nothing.
	if err := s.Write(ctx, optest.Records(M{"bad": make(chan int)})); err == nil {
		t.Fatal("an unencodable record was written")
	}
	writeAll(t, s, optest.Records(M{"n": int64(2)}))
	got, _ := os.ReadFile(path)
	if want := "{\"n\":1\n{\"n\":2}\n"; string(got) != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
}

func ptr[T any](v T) *T { return &v }
