package source_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/source"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

type M = map[string]any

func build(t *testing.T, kind string, opts M, env operators.BuildEnv) flowruntime.Source {
	t.Helper()
	n := optest.Build(t, optest.Stage(t, "source", kind, "src", opts), env)
	if n.Source == nil {
		t.Fatalf("%s built no source", kind)
	}
	return n.Source
}

func run(t *testing.T, s flowruntime.Source) (*optest.Emitter, error) {
	t.Helper()
	var e optest.Emitter
	err := s.Run(context.Background(), &e)
	return &e, err
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGenerate(t *testing.T) {
	clock := optest.NewClock(time.Unix(0, 0))
	s := build(t, "generate", M{"count": 300, "template": `{id: seq, level: seq % 100 == 0 ? "ERROR" : "INFO"}`}, optest.Env(clock))
	e, err := run(t, s)
	if err != nil {
		t.Fatal(err)
	}
	recs := e.Records()
	if len(recs) != 300 {
		t.Fatalf("got %d records, want 300", len(recs))
	}
	if diff := cmp.Diff(M{"id": int64(100), "level": "ERROR"}, recs[100].Fields); diff != "" {
		t.Errorf("record 100 (-want +got):\n%s", diff)
	}
	if recs[299].Meta.Position != 299 || recs[299].Meta.Source != "src" {
		t.Errorf("meta of the last record = %+v", recs[299].Meta)
	}
	if e.Calls() != 2 {
		t.Errorf("emitted in %d batches, want 2 (256 + 44)", e.Calls())
	}

	// Default template, with an interval on the virtual clock.
	s = build(t, "generate", M{"count": 3, "interval": time.Second}, optest.Env(clock))
	before := clock.Now()
	e, err = run(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]M{{"seq": int64(0)}, {"seq": int64(1)}, {"seq": int64(2)}}, e.Fields()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := clock.Now().Sub(before); got != 2*time.Second {
		t.Errorf("3 records 1s apart took %v, want 2s", got)
	}
}

// TestGenerateEndless checks that count = 0 runs until the context ends and
// then returns nil.
func TestGenerateEndless(t *testing.T) {
	s := build(t, "generate", M{}, optest.Env(nil))
	ctx, cancel := context.WithCancel(context.Background())
	e := &optest.Emitter{Credit: make(chan struct{})}
	done := make(chan error)
	go func() { done <- s.Run(ctx, e) }()
	for range 1000 {
		e.Credit <- struct{}{}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if n := len(e.Records()); n < 1000-256 || n > 1000 {
		t.Errorf("emitted %d records for 1000 credits", n)
	}
}

func TestFileCodecs(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, data string
		opts       M
		want       []M
		positions  []int64
	}{
		{"lines", "first\r\nsecond\n\nlast", M{}, []M{{"line": "first"}, {"line": "second"}, {"line": ""}, {"line": "last"}},
			[]int64{0, 7, 14, 15}},
		{"json", `{"id": 1, "n": 9007199254740993}` + "\n\n" + `{"id": 2, "f": 0.5}` + "\n", M{"codec": "json"},
			[]M{{"id": int64(1), "n": int64(9007199254740993)}, {"id": int64(2), "f": 0.5}}, []int64{0, 34}},
		{"json with a byte order mark", "\xef\xbb\xbf{\"id\": 1}\n", M{"codec": "json"}, []M{{"id": int64(1)}}, []int64{0}},
		{"csv", "\xef\xbb\xbfname;note\nann;\"a;b\"\nbob;\"two\nlines\"\ncid;x;extra\n", M{"codec": "csv", "delimiter": ";"},
			[]M{{"name": "ann", "note": "a;b"}, {"name": "bob", "note": "two\nlines"}, {"name": "cid", "note": "x", "column_3": "extra"}},
			[]int64{13, 23, 39}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			write(t, path, tt.data)
			opts := M{"path": path}
			for k, v := range tt.opts {
				opts[k] = v
			}
			e, err := run(t, build(t, "file", opts, optest.Env(nil)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, e.Fields()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			var pos []int64
			for _, r := range e.Records() {
				pos = append(pos, r.Meta.Position)
				if r.Meta.File != path {
					t.Errorf("Meta.File = %q, want %q", r.Meta.File, path)
				}
			}
			if diff := cmp.Diff(tt.positions, pos); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileGlobAndDir(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.log"), "b1\n")
	write(t, filepath.Join(dir, "a.log"), "a1\na2\n")
	write(t, filepath.Join(dir, "c.txt"), "no\n")
	env := optest.Env(nil)
	env.Dir = dir
	e, err := run(t, build(t, "file", M{"path": "*.log"}, env))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]M{{"line": "a1"}, {"line": "a2"}, {"line": "b1"}}, e.Fields()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := run(t, build(t, "file", M{"path": "*.none"}, env)); err == nil || !strings.Contains(err.Error(), "no file matches") {
		t.Errorf("a glob matching nothing: %v", err)
	}
	if _, err := run(t, build(t, "file", M{"path": "missing.log"}, env)); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("a missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestFileBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.jsonl")
	write(t, path, "{\"ok\": 1}\n{oops}\n{\"ok\": 2}\n")
	st := optest.Stage(t, "source", "file", "src", M{"path": path, "codec": "json"})
	n := optest.Build(t, st, optest.Env(nil))
	_, err := run(t, n.Source)
	if err == nil || !strings.Contains(err.Error(), path+":2: invalid JSON") {
		t.Errorf("a bad line with on_error = stop: %v", err)
	}

	// Resumed past the start, the line's number is not known: its offset
	// is named instead.
	for _, codec := range []string{"json", "lines"} {
		bad := filepath.Join(dir, "resumed.txt")
		write(t, bad, "{\"ok\": 1}\n{oops}\n"+strings.Repeat("y", 60)+"\n")
		st = optest.Stage(t, "source", "file", "src", M{"path": bad, "codec": codec, "max_line_bytes": 50})
		n = optest.Build(t, st, optest.Env(nil))
		if err := n.Source.(flowruntime.Resumer).Resume([]source.Position{{File: bad, Offset: 10}}); err != nil {
			t.Fatal(err)
		}
		want := bad + ": byte 10: invalid JSON"
		if codec == "lines" {
			want = bad + ": byte 17: line too long: 60 bytes"
		}
		if _, err := run(t, n.Source); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a bad line read after resuming, codec %s: %v, want %q", codec, err, want)
		}
	}

	long := filepath.Join(dir, "long.jsonl")
	write(t, long, "{\"ok\": 1}\n"+strings.Repeat("x", 100)+"\n")
	st = optest.Stage(t, "source", "file", "src", M{"path": long, "codec": "json", "max_line_bytes": 50})
	n = optest.Build(t, st, optest.Env(nil))
	if _, err := run(t, n.Source); err == nil || !strings.Contains(err.Error(), "line too long") {
		t.Errorf("a too long line: %v", err)
	}
}

// TestFileFollow appends to, truncates and rotates a followed file.
func TestFileFollow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	write(t, path, "old\n")
	s := build(t, "file", M{"path": filepath.Join(dir, "*.log"), "follow": true, "poll_interval": 5 * time.Millisecond}, optest.Env(nil))
	ctx, cancel := context.WithCancel(context.Background())
	var e optest.Emitter
	done := make(chan error)
	go func() { done <- s.Run(ctx, &e) }()
	waitFor := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var got []string
			for _, f := range e.Fields() {
				got = append(got, f["line"].(string))
			}
			if cmp.Equal(want, got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lines = %q, want %q", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("old")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "par")
	time.Sleep(30 * time.Millisecond) // a partial line is not a record yet
	fmt.Fprint(f, "tial\n")
	f.Close()
	waitFor("old", "partial")
	write(t, path, "new\n") // truncated and shorter
	waitFor("old", "partial", "new")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path, "rotated\n")
	waitFor("old", "partial", "new", "rotated")
	write(t, filepath.Join(dir, "other.log"), "other\n")
	waitFor("old", "partial", "new", "rotated", "other")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
}

// TestFileFollowFromEnd checks that start_at = "end" skips what the file
// held at start and reads what is appended.
func TestFileFollowFromEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "old 1\nold 2\n")
	s := build(t, "file", M{"path": path, "follow": true, "start_at": "end", "poll_interval": 5 * time.Millisecond}, optest.Env(nil))
	ctx, cancel := context.WithCancel(context.Background())
	var e optest.Emitter
	done := make(chan error)
	go func() { done <- s.Run(ctx, &e) }()
	// The source opens the file at some point after Run starts: append
	// until it sees a line, which must be one appended after it opened.
	deadline := time.Now().Add(5 * time.Second)
	for len(e.Records()) == 0 && time.Now().Before(deadline) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, "new\n")
		f.Close()
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs := e.Records()
	if len(recs) == 0 {
		t.Fatal("no appended line was read")
	}
	for _, r := range recs {
		if r.Fields["line"] != "new" || r.Meta.Position < 12 || (r.Meta.Position-12)%4 != 0 {
			t.Errorf("record %+v, want only appended lines", r)
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestStdinBackpressure checks that without credit the source stops
// reading: the writer of its input waits.
func TestStdinBackpressure(t *testing.T) {
	pr, pw := io.Pipe()
	in := &countingReader{r: pr}
	env := optest.Env(nil)
	env.Stdin = in
	s := build(t, "stdin", M{"codec": "json"}, env)
	e := &optest.Emitter{Credit: make(chan struct{})}
	done := make(chan error)
	go func() { done <- s.Run(context.Background(), e) }()
	const lines = 20000
	line := `{"n": 1, "pad": "` + strings.Repeat("x", 80) + `"}` + "\n"
	go func() {
		for range lines {
			if _, err := io.WriteString(pw, line); err != nil {
				return
			}
		}
		pw.Close()
	}()
	time.Sleep(100 * time.Millisecond)
	if read := in.n.Load(); read > 256<<10 {
		t.Errorf("read %d bytes without credit, want at most one buffer", read)
	}
	go func() {
		for range lines {
			e.Credit <- struct{}{}
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(e.Records()); got != lines {
		t.Errorf("got %d records, want %d", got, lines)
	}
}

// ackEmitter counts the records emitted and those of them acknowledged.
type ackEmitter struct {
	mu             sync.Mutex
	emitted, acked int
}

// Emit implements runtime.Emitter: every record is finished at once.
func (e *ackEmitter) Emit(_ context.Context, recs []flowruntime.Record, done func()) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitted += len(recs)
	if done != nil {
		e.acked += len(recs)
		done()
	}
	return nil
}

// TestStopAcknowledgesTheGoodLines: a stdin or file source stopped by a line
// it cannot decode emits every good line before it, each acknowledged, in
// however many batches.
func TestStopAcknowledgesTheGoodLines(t *testing.T) {
	var in strings.Builder
	for i := 1; i <= 1000; i++ {
		if i == 900 {
			in.WriteString("{oops}\n")
			continue
		}
		fmt.Fprintf(&in, "{\"id\":%d}\n", i)
	}
	path := filepath.Join(t.TempDir(), "in.jsonl")
	write(t, path, in.String())
	for _, kind := range []string{"stdin", "file"} {
		env := optest.Env(nil)
		env.Stdin = strings.NewReader(in.String())
		opts := M{"codec": "json"}
		if kind == "file" {
			opts["path"] = path
		}
		var e ackEmitter
		err := build(t, kind, opts, env).Run(context.Background(), &e)
		if err == nil || !strings.Contains(err.Error(), ":900: invalid JSON") {
			t.Errorf("%s: Run = %v, want an error at line 900", kind, err)
		}
		if e.emitted != 899 || e.acked != 899 {
			t.Errorf("%s: emitted %d records, acknowledged %d; want 899 of each", kind, e.emitted, e.acked)
		}
	}
}

// TestStdinLatency checks that a record is emitted as soon as its line
// arrives, without waiting for a full batch.
func TestStdinLatency(t *testing.T) {
	pr, pw := io.Pipe()
	env := optest.Env(nil)
	env.Stdin = pr
	s := build(t, "stdin", M{}, env)
	ctx, cancel := context.WithCancel(context.Background())
	var e optest.Emitter
	done := make(chan error)
	go func() { done <- s.Run(ctx, &e) }()
	io.WriteString(pw, "one\n")
	deadline := time.Now().Add(5 * time.Second)
	for len(e.Records()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if diff := cmp.Diff([]M{{"line": "one"}}, e.Fields()); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	cancel() // the pipe stays open: Run must still return
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
	pw.Close()
}

func TestRecords(t *testing.T) {
	in := []M{{"a": int64(1), "l": []any{"x"}}, {"a": int64(2)}}
	e, err := run(t, source.NewRecords("src", in))
	if err != nil {
		t.Fatal(err)
	}
	got := e.Fields()
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got[0]["a"] = "changed"
	if in[0]["a"] != int64(1) {
		t.Error("the emitted record shares its map with the input")
	}
}

func BenchmarkFileJSON(b *testing.B) {
	path := filepath.Join(b.TempDir(), "in.jsonl")
	var sb strings.Builder
	const lines = 10000
	for i := range lines {
		fmt.Fprintf(&sb, `{"id": %d, "level": "INFO", "msg": "request served", "latency": 1.5}`+"\n", i)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	n, err := optestBuild(b, M{"path": path, "codec": "json"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(sb.Len()))
	for b.Loop() {
		if err := n.Run(context.Background(), discardEmitter{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/record")
}

func optestBuild(b *testing.B, opts M) (flowruntime.Source, error) {
	n := optest.Build(b, optest.Stage(b, "source", "file", "src", opts), optest.Env(nil))
	return n.Source, nil
}

type discardEmitter struct{}

func (discardEmitter) Emit(context.Context, []flowruntime.Record, func()) error { return nil }
