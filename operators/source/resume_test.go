package source_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/source"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// lines returns the line field of every record emitted.
func lines(e *optest.Emitter) []string {
	var got []string
	for _, f := range e.Fields() {
		got = append(got, f["line"].(string))
	}
	return got
}

// byPath compares positions by file and offset alone, leaving out the
// file's identity (see TestFileIdentity).
var byPath = cmpopts.IgnoreFields(source.Position{}, "Device", "Inode", "Fingerprint")

// jsonRoundTrip encodes and decodes v, as a checkpoint saved to disk is.
func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFileResume runs a file source, takes its checkpoint, adds lines, and
// runs a new source resumed from the checkpoint (as given, and decoded from
// JSON): it reads exactly the lines the first run did not.
func TestFileResume(t *testing.T) {
	for _, viaJSON := range []bool{false, true} {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
		write(t, a, "a1\na2\n")
		write(t, b, "b1\n")
		opts := M{"path": filepath.Join(dir, "*.log")}
		src := build(t, "file", opts, optest.Env(nil))
		if _, err := run(t, src); err != nil {
			t.Fatal(err)
		}
		cp := src.(flowruntime.Checkpointer).Checkpoint()
		want := []source.Position{{File: a, Offset: 6}, {File: b, Offset: 3}}
		if diff := cmp.Diff(want, cp, byPath); diff != "" {
			t.Fatalf("checkpoint (-want +got):\n%s", diff)
		}
		if viaJSON {
			cp = jsonRoundTrip(t, cp)
		}
		appendTo(t, a, "a3\n")
		appendTo(t, b, "b2\n")
		next := build(t, "file", opts, optest.Env(nil))
		if err := next.(flowruntime.Resumer).Resume(cp); err != nil {
			t.Fatal(err)
		}
		e, err := run(t, next)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a3", "b2"}, lines(e)); diff != "" {
			t.Errorf("viaJSON=%t: resumed run read (-want +got):\n%s", viaJSON, diff)
		}
	}
}

// TestFileResumeFollow resumes a followed file at its checkpoint, which
// wins over start_at = "end"; after a rotation the new file is read from
// its start.
func TestFileResumeFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "done 1\ndone 2\nnot yet\n")
	s := build(t, "file", M{"path": path, "follow": true, "start_at": "end", "poll_interval": 5 * time.Millisecond}, optest.Env(nil))
	if err := s.(flowruntime.Resumer).Resume([]source.Position{{File: path, Offset: int64(len("done 1\ndone 2\n"))}}); err != nil {
		t.Fatal(err)
	}
	f := startFollow(t, s)
	f.wait("not yet")
	appendTo(t, path, "later\n")
	f.wait("not yet", "later")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path, "rotated\n")
	f.wait("not yet", "later", "rotated")
}

func TestFileResumeRejects(t *testing.T) {
	for _, cp := range []any{"nope", int64(3), []any{"x"}, []source.Position{{File: "f", Offset: -1}}} {
		s := build(t, "file", M{"path": "x.log"}, optest.Env(nil))
		if err := s.(flowruntime.Resumer).Resume(cp); err == nil {
			t.Errorf("Resume(%#v) = nil, want an error", cp)
		}
	}
}

// TestGenerateResume checks that a generate source's checkpoint is the next
// sequence number and that a resumed one continues from it up to count.
func TestGenerateResume(t *testing.T) {
	opts := M{"count": 10}
	first := build(t, "generate", opts, optest.Env(optest.NewClock(time.Unix(0, 0))))
	if got := first.(flowruntime.Checkpointer).Checkpoint(); got != int64(0) {
		t.Errorf("checkpoint before Run = %v, want 0", got)
	}
	if _, err := run(t, first); err != nil {
		t.Fatal(err)
	}
	if got := first.(flowruntime.Checkpointer).Checkpoint(); got != int64(10) {
		t.Errorf("checkpoint after 10 records = %v, want 10", got)
	}
	for _, tt := range []struct {
		cp   any
		want []int64
	}{
		{int64(7), []int64{7, 8, 9}},
		{float64(8), []int64{8, 9}}, // decoded from JSON
		{int64(10), nil},
	} {
		s := build(t, "generate", opts, optest.Env(optest.NewClock(time.Unix(0, 0))))
		if err := s.(flowruntime.Resumer).Resume(tt.cp); err != nil {
			t.Fatal(err)
		}
		e, err := run(t, s)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range e.Records() {
			got = append(got, r.Meta.Position)
			if r.Fields["seq"] != r.Meta.Position {
				t.Errorf("record %v: seq field and position differ", r)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("resumed at %v (-want +got):\n%s", tt.cp, diff)
		}
	}
	for _, bad := range []any{"7", 1.5, int64(-1)} {
		s := build(t, "generate", opts, optest.Env(nil))
		if err := s.(flowruntime.Resumer).Resume(bad); err == nil {
			t.Errorf("Resume(%#v) = nil, want an error", bad)
		}
	}
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestFileCheckpointAtBadLine: a file source stopped by a line it cannot
// decode acknowledges every line before it and none after it, so that its
// checkpoint ends exactly at the start of the bad line, whether the lines
// are decoded in parallel (json) or as they are read, and when the batch
// that holds the line was carried over from an earlier file (whose last
// line has no newline).
func TestFileCheckpointAtBadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	// at is the offset of line n (1-based) of text.
	at := func(text string, n int) int64 {
		off := 0
		for i := 1; i < n; i++ {
			off += strings.IndexByte(text[off:], '\n') + 1
		}
		return int64(off)
	}
	a900 := jsonLines(1000, map[int]string{900: "{oops}"})
	aLong := jsonLines(1000, map[int]string{700: long})
	unterminated := `{"id":1}` + "\n" + `{"id":2}`
	badLast := `{"id":1}` + "\n{oops}"
	bBad := jsonLines(10, map[int]string{5: "{5}"})
	tests := []struct {
		name, codec string
		files       []string // a.txt, b.txt, ...
		want        []int64  // the checkpoint of each file
		wantErr     bool
	}{
		{"json, line 900 of 1000", "json", []string{a900}, []int64{at(a900, 900)}, true},
		{"json, line 1", "json", []string{jsonLines(10, map[int]string{1: "{oops}"})}, []int64{0}, true},
		{"lines, a long line", "lines", []string{aLong}, []int64{at(aLong, 700)}, true},
		{"json, a long line", "json", []string{aLong}, []int64{at(aLong, 700)}, true},
		{"json, in the second file", "json", []string{unterminated, bBad},
			[]int64{int64(len(unterminated)), at(bBad, 5)}, true},
		{"json, in the carried part", "json", []string{badLast, bBad},
			[]int64{at(badLast, 2), 0}, true},
		{"lines, carried over three files", "lines", []string{"a", "b", unterminated, "c\n"},
			[]int64{1, 1, int64(len(unterminated)), 2}, false},
		{"json, carried over three files", "json", []string{"{}", "{}", unterminated, "{}\n"},
			[]int64{2, 2, int64(len(unterminated)), 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var want []source.Position
			for i, text := range tt.files {
				path := filepath.Join(dir, string(rune('a'+i))+".txt")
				write(t, path, text)
				want = append(want, source.Position{File: path, Offset: tt.want[i]})
			}
			src := build(t, "file", M{"path": filepath.Join(dir, "*.txt"), "codec": tt.codec, "max_line_bytes": 50}, optest.Env(nil))
			if _, err := run(t, src); (err != nil) != tt.wantErr {
				t.Fatalf("Run = %v, want an error: %t", err, tt.wantErr)
			}
			if diff := cmp.Diff(want, src.(flowruntime.Checkpointer).Checkpoint(), byPath); diff != "" {
				t.Errorf("checkpoint (-want +got):\n%s", diff)
			}
		})
	}
}
