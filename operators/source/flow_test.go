package source_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// flowRun is a finished run of a pipeline "p" whose source "in" writes to
// good.jsonl and dead-letters to rejects.jsonl, in dir.
type flowRun struct {
	dir   string
	err   error
	stats flowruntime.NodeStats
}

// runFlow runs pipeline "p" of a .flow file whose source block is source,
// in dir, with stdin as standard input.
func runFlow(t *testing.T, dir, source string, stdin io.Reader) flowRun {
	t.Helper()
	src := `
pipeline "p" {
  ` + source + `
  sink "good" {
    from = in
    kind = "file"
    path = "good.jsonl"
  }
`
	if strings.Contains(source, "dead_letter") {
		src += `  sink "rejects" {
    kind = "file"
    path = "rejects.jsonl"
  }
`
	}
	src += "}\n"
	p := optest.Plan(t, src, "p")
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
	r := flowRun{dir: dir, err: ex.Wait()}
	r.stats, _ = ex.Stats().Node("in")
	return r
}

// output returns the lines of the file name of the run's directory; none
// when the run did not write it (a file sink whose run fails before its
// first record leaves no file behind).
func (r flowRun) output(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSuffix(string(b), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// rejects returns the dead-lettered records of the run.
func (r flowRun) rejects(t *testing.T) []M {
	t.Helper()
	var out []M
	for _, l := range r.output(t, "rejects.jsonl") {
		var m M
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("reject %s: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// jsonLines returns n lines {"id":I} for I = 1..n, with the lines numbered
// in bad (1-based) replaced by their text.
func jsonLines(n int, bad map[int]string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if text, ok := bad[i]; ok {
			b.WriteString(text + "\n")
			continue
		}
		fmt.Fprintf(&b, "{\"id\":%d}\n", i)
	}
	return b.String()
}

// ids returns the lines {"id":I} for I in from..to, skipping those in skip.
func ids(from, to int, skip ...int) []string {
	var out []string
next:
	for i := from; i <= to; i++ {
		for _, s := range skip {
			if i == s {
				continue next
			}
		}
		out = append(out, fmt.Sprintf("{\"id\":%d}", i))
	}
	return out
}

func fileSource(codec, extra string) string {
	return `source "in" {
    kind  = "file"
    path  = "in.txt"
    codec = "` + codec + `"
    ` + extra + `
  }`
}

// TestStopWritesEveryGoodLineBeforeTheBadOne: under on_error = "stop" a
// line the source cannot decode fails the run naming FILE:LINE, once every
// line before it is written, however the lines are batched.
func TestStopWritesEveryGoodLineBeforeTheBadOne(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name, codec, extra string
		input              string
		want               []string
		wantErr            string
	}{
		{
			name: "json, line 900 of 1000", codec: "json",
			input: jsonLines(1000, map[int]string{900: "{oops}"}),
			want:  ids(1, 899), wantErr: "in.txt:900: invalid JSON at byte 1",
		},
		{
			name: "json, the first line", codec: "json",
			input:   jsonLines(10, map[int]string{1: "not json"}),
			wantErr: "in.txt:1: invalid JSON",
		},
		{
			name: "json, a long line", codec: "json", extra: "max_line_bytes = 50",
			input: jsonLines(1000, map[int]string{300: long}),
			want:  ids(1, 299), wantErr: "in.txt:300: line too long: 100 bytes, more than the limit of 50",
		},
		{
			name: "lines, a long line", codec: "lines", extra: "max_line_bytes = 50",
			input:   "a\nb\n" + long + "\nc\n",
			want:    []string{`{"line":"a"}`, `{"line":"b"}`},
			wantErr: "in.txt:3: line too long: 100 bytes, more than the limit of 50",
		},
		{
			name: "csv, a long row", codec: "csv", extra: "max_line_bytes = 50",
			input:   "id\n1\n2\n" + long + "\n3\n",
			want:    []string{`{"id":"1"}`, `{"id":"2"}`},
			wantErr: "in.txt:4: line too long",
		},
		{
			name: "json, a long unterminated last line", codec: "json", extra: "max_line_bytes = 50",
			input: jsonLines(3, nil) + long,
			want:  ids(1, 3), wantErr: "in.txt:4: line too long: 100 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "in.txt"), tt.input)
			r := runFlow(t, dir, fileSource(tt.codec, tt.extra), nil)
			if got := r.output(t, "good.jsonl"); !cmp.Equal(tt.want, got) {
				t.Errorf("wrote %d lines, want %d:\n%s", len(got), len(tt.want), cmp.Diff(tt.want, got))
			}
			if r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr) {
				t.Fatalf("run error %v, want one containing %q", r.err, tt.wantErr)
			}
			if msg := r.err.Error(); strings.Count(msg, "line too long") > 1 || strings.Contains(msg, ": at byte") {
				t.Errorf("run error %q says where or what twice", msg)
			}
		})
	}
}

// TestStdinStopWritesTheGoodLines: two good lines and a bad one arriving
// together on stdin write the two, then fail at stdin:3.
func TestStdinStopWritesTheGoodLines(t *testing.T) {
	dir := t.TempDir()
	r := runFlow(t, dir, `source "in" {
    kind  = "stdin"
    codec = "json"
  }`, strings.NewReader("{\"id\":1}\n{\"id\":2}\n{bad\n"))
	if diff := cmp.Diff(ids(1, 2), r.output(t, "good.jsonl")); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "stdin:3: invalid JSON") {
		t.Errorf("run error %v, want one at stdin:3", r.err)
	}
}

// TestDeadLetterRecord: a dead-lettered line is {line, error, stage, file,
// line_number}, and a line over max_line_bytes is dead-lettered cut to the
// limit with its real length; reading goes on after both.
func TestDeadLetterRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.txt")
	long := strings.Repeat("é", 60) // 120 bytes
	write(t, path, jsonLines(600, map[int]string{2: "{oops}", 299: long, 512: "[1]"}))
	r := runFlow(t, dir, fileSource("json", "max_line_bytes = 51\n    on_error = \"dead_letter\"\n    dead_letter = rejects"), nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if diff := cmp.Diff(ids(1, 600, 2, 299, 512), r.output(t, "good.jsonl")); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	got := r.rejects(t)
	want := []M{
		{"line": "{oops}", "file": path, "line_number": float64(2), "stage": "in"},
		// 51 bytes cut to 50, the last whole rune.
		{"line": strings.Repeat("é", 25), "length": float64(120), "file": path, "line_number": float64(299), "stage": "in"},
		{"line": "[1]", "file": path, "line_number": float64(512), "stage": "in"},
	}
	wantErr := []string{path + ":2: invalid JSON", path + ":299: line too long: 120 bytes, more than the limit of 51", path + ":512: invalid JSON"}
	if len(got) != len(want) {
		t.Fatalf("dead-lettered %v, want %d records", got, len(want))
	}
	for i := range got {
		msg, _ := got[i]["error"].(string)
		if !strings.HasPrefix(msg, wantErr[i]) {
			t.Errorf("reject %d: error %q, want it to start %q", i, msg, wantErr[i])
		}
		delete(got[i], "error")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead-lettered (-want +got):\n%s", diff)
	}
	if r.stats.DeadLettered != 3 {
		t.Errorf("counted %d dead-lettered, want 3", r.stats.DeadLettered)
	}
}

// TestSkipGoesOn: under skip every undecodable line, long ones too, is
// counted and reading goes on, whatever the codec.
func TestSkipGoesOn(t *testing.T) {
	long := strings.Repeat("y", 5000)
	tests := []struct {
		name, codec, input string
		want               []string
		skipped            int64
	}{
		{"json", "json", jsonLines(1000, map[int]string{1: long, 300: "{", 301: long, 1000: long}), ids(1, 999, 1, 300, 301), 4},
		{"lines", "lines", "a\n" + long + "\r\nb\n" + long, []string{`{"line":"a"}`, `{"line":"b"}`}, 2},
		{"csv", "csv", "id\n1\n" + long + "\n2\n\"open\n" + long + "\n3\n", []string{`{"id":"1"}`, `{"id":"2"}`, `{"id":"3"}`}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "in.txt"), tt.input)
			r := runFlow(t, dir, fileSource(tt.codec, "max_line_bytes = 64\n    on_error = \"skip\""), nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if diff := cmp.Diff(tt.want, r.output(t, "good.jsonl")); diff != "" {
				t.Errorf("written (-want +got):\n%s", diff)
			}
			if r.stats.Skipped != tt.skipped {
				t.Errorf("counted %d skipped, want %d", r.stats.Skipped, tt.skipped)
			}
		})
	}
}

// TestStopAcrossFiles: a batch carried from one file into the next keeps
// the first file's lines when the second fails.
func TestStopAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), jsonLines(100, nil))
	write(t, filepath.Join(dir, "b.txt"), strings.Replace(jsonLines(10, nil), `{"id":5}`, "{5}", 1))
	r := runFlow(t, dir, `source "in" {
    kind  = "file"
    path  = "*.txt"
    codec = "json"
  }`, nil)
	want := append(ids(1, 100), ids(1, 4)...)
	if diff := cmp.Diff(want, r.output(t, "good.jsonl")); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "b.txt:5: invalid JSON") {
		t.Errorf("run error %v, want one at b.txt:5", r.err)
	}
}

// TestCSVOpenQuoteIsBounded: a csv record whose quoted field is still open
// after max_line_bytes is dead-lettered, at the line it started on, and the
// next line starts a new record.
func TestCSVOpenQuoteIsBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.txt")
	write(t, path, "id\n1\n\"abc\n2\n3\n4\n5\n6\n")
	r := runFlow(t, dir, fileSource("csv", "max_line_bytes = 10\n    on_error = \"dead_letter\"\n    dead_letter = rejects"), nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if diff := cmp.Diff([]string{`{"id":"1"}`, `{"id":"5"}`, `{"id":"6"}`}, r.output(t, "good.jsonl")); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	got := r.rejects(t)
	if len(got) != 1 {
		t.Fatalf("dead-lettered %v, want one record", got)
	}
	if msg, _ := got[0]["error"].(string); !strings.HasPrefix(msg, path+":3: quoted field not closed") {
		t.Errorf("error %q, want it at line 3", msg)
	}
	delete(got[0], "error")
	want := M{"line": "\"abc\n2\n3\n4", "file": path, "line_number": float64(3), "stage": "in"}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("dead-lettered (-want +got):\n%s", diff)
	}
}
