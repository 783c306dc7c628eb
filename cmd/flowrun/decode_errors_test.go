package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These tests run the built binary on input its source cannot decode, as
// users found it: what is written, the exit code and the message.

// decodeRun is a finished `flowrun run` of a pipeline.
type decodeRun struct {
	code   int
	stderr string
	out    []string
}

// runDecode writes the pipeline and in.jsonl to a new directory, runs
// `flowrun run` there with stdin, and returns its exit code, its log and the
// lines of out.jsonl.
func runDecode(t *testing.T, bin, pipeline, input, stdin string) decodeRun {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "p.flow")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	r := decodeRun{}
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatal(err)
		}
		r.code = exit.ExitCode()
	}
	r.stderr = stderr.String()
	b, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if text := strings.TrimSuffix(string(b), "\n"); text != "" {
		r.out = strings.Split(text, "\n")
	}
	return r
}

// decodePipeline reads source (a source block "in") into out.jsonl.
func decodePipeline(source string) string {
	return `pipeline "p" {
  ` + source + `
  sink "out" {
    from = in
    kind = "file"
    path = "out.jsonl"
  }
}
`
}

// numbered returns n lines {"id":I}, I = 1..n, with line bad (1-based)
// replaced by text.
func numbered(n, bad int, text string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i == bad {
			b.WriteString(text + "\n")
			continue
		}
		fmt.Fprintf(&b, "{\"id\":%d}\n", i)
	}
	return b.String()
}

// lineOffset returns the byte offset at which line n (1-based) of text
// starts.
func lineOffset(text string, n int) int64 {
	off := 0
	for i := 1; i < n; i++ {
		off += strings.IndexByte(text[off:], '\n') + 1
	}
	return int64(off)
}

// checkpointLog is the line a run logs at its end for the file source "in"
// reading in.jsonl (named by its absolute path): every byte before the
// offset is finished.
var checkpointLog = regexp.MustCompile(`source checkpoint: stage=in checkpoint=\[/\S*/in\.jsonl@(\d+)\]`)

// checkpoint returns the offset of in.jsonl the run logged as finished.
func (r decodeRun) checkpoint(t *testing.T) int64 {
	t.Helper()
	m := checkpointLog.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no checkpoint of in.jsonl logged:\n%s", r.stderr)
	}
	off, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

func TestRunDecodeErrors(t *testing.T) {
	bin := buildFlowrun(t)
	fileSource := func(extra string) string {
		return `source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
    ` + extra + `
  }`
	}
	long := strings.Repeat("z", 300)
	tests := []struct {
		name, source, input, stdin string
		wantCode                   int
		wantOut                    int
		wantLog                    string
		// checkpoint, for a file source, is the line before which the
		// logged checkpoint must end (1-based; one past the last line
		// when every line is finished): under stop, the bad line, since
		// every good line before it is acknowledged and none after it.
		checkpoint int
	}{
		{
			name: "stop at line 900 of 1000", source: fileSource(""),
			input: numbered(1000, 900, "{oops}"), wantCode: 1, wantOut: 899, wantLog: "in.jsonl:900: invalid JSON",
			checkpoint: 900,
		},
		{
			name: "stop at line 1", source: fileSource(""),
			input: numbered(1000, 1, "{oops}"), wantCode: 1, wantOut: 0, wantLog: "in.jsonl:1: invalid JSON",
			checkpoint: 1,
		},
		{
			name: "stop on stdin", source: "source \"in\" {\n    kind  = \"stdin\"\n    codec = \"json\"\n  }",
			stdin: "{\"id\":1}\n{\"id\":2}\nnot json\n{\"id\":4}\n", wantCode: 1, wantOut: 2, wantLog: "stdin:3: invalid JSON",
		},
		{
			name: "stop at a long line", source: fileSource("max_line_bytes = 100"),
			input: numbered(1000, 500, long), wantCode: 1, wantOut: 499,
			wantLog:    "in.jsonl:500: line too long: 300 bytes, more than the limit of 100",
			checkpoint: 500,
		},
		{
			name: "skip a long line", source: fileSource("max_line_bytes = 100\n    on_error = \"skip\""),
			input: numbered(1000, 500, long), wantOut: 999, checkpoint: 1001,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runDecode(t, bin, decodePipeline(tt.source), tt.input, tt.stdin)
			if r.code != tt.wantCode {
				t.Errorf("exit code %d, want %d\n%s", r.code, tt.wantCode, r.stderr)
			}
			if len(r.out) != tt.wantOut {
				t.Errorf("wrote %d records, want %d", len(r.out), tt.wantOut)
			}
			for i, l := range r.out {
				if id := fmt.Sprintf(`"id":%d`, i+1); i+1 < 500 && !strings.Contains(l, id) {
					t.Fatalf("record %d = %s, want %s", i+1, l, id)
				}
			}
			if tt.checkpoint > 0 {
				if got, want := r.checkpoint(t), lineOffset(tt.input, tt.checkpoint); got != want {
					t.Errorf("checkpoint at byte %d, want %d (the start of line %d)", got, want, tt.checkpoint)
				}
			}
			if tt.wantLog != "" {
				if !strings.Contains(r.stderr, tt.wantLog) {
					t.Errorf("log does not say %q:\n%s", tt.wantLog, r.stderr)
				}
				if strings.Count(r.stderr, "line too long") > 1 {
					t.Errorf("log repeats itself:\n%s", r.stderr)
				}
			}
		})
	}
}
