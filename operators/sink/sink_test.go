package sink_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/sink"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

type M = map[string]any

func build(t testing.TB, kind string, opts M, env operators.BuildEnv) flowruntime.Sink {
	t.Helper()
	n := optest.Build(t, optest.Stage(t, "sink", kind, "out", opts), env)
	if n.Sink == nil {
		t.Fatalf("%s built no sink", kind)
	}
	return n.Sink
}

func writeAll(t *testing.T, s flowruntime.Sink, batches ...[]flowruntime.Record) {
	t.Helper()
	for _, b := range batches {
		if err := s.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStdout(t *testing.T) {
	recs := optest.Records(M{"z": int64(1), "a": "x"}, M{"line": "plain text", "n": 2.5}, M{"line": int64(3)})
	tests := []struct {
		opts M
		want string
	}{
		{M{}, "{\"a\":\"x\",\"z\":1}\n{\"line\":\"plain text\",\"n\":2.5}\n{\"line\":3}\n"},
		{M{"codec": "lines"}, "{\"a\":\"x\",\"z\":1}\nplain text\n3\n"},
		{M{"codec": "lines", "field": "a"}, "x\n{\"line\":\"plain text\",\"n\":2.5}\n{\"line\":3}\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		env := optest.Env(nil)
		env.Stdout = &out
		writeAll(t, build(t, "stdout", tt.opts, env), recs[:1], recs[1:])
		if out.String() != tt.want {
			t.Errorf("stdout %v wrote\n%s\nwant\n%s", tt.opts, out.String(), tt.want)
		}
	}
}

func TestFileJSONL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out", "nested", "errors.jsonl")
	writeAll(t, build(t, "file", M{"path": path}, optest.Env(nil)),
		optest.Records(M{"b": int64(1), "a": []any{"x"}}), optest.Records(M{"c": nil}))
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"a\":[\"x\"],\"b\":1}\n{\"c\":null}\n"; string(got) != want {
		t.Errorf("file holds\n%s\nwant\n%s", got, want)
	}
	// Without append the file starts afresh; with it, it grows.
	writeAll(t, build(t, "file", M{"path": path}, optest.Env(nil)), optest.Records(M{"n": int64(1)}))
	writeAll(t, build(t, "file", M{"path": path, "append": true, "sync": true}, optest.Env(nil)), optest.Records(M{"n": int64(2)}))
	got, _ = os.ReadFile(path)
	if want := "{\"n\":1}\n{\"n\":2}\n"; string(got) != want {
		t.Errorf("after truncate and append: %q, want %q", got, want)
	}
}

func TestFileEmptyIsCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.jsonl")
	writeAll(t, build(t, "file", M{"path": path}, optest.Env(nil)))
	if info, err := os.Stat(path); err != nil || info.Size() != 0 {
		t.Errorf("a sink that wrote nothing: %v, %v", info, err)
	}
}

func TestFileCSV(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	recs := optest.Records(M{"name": "ann", "note": "a, \"quoted\"", "n": int64(1)}, M{"name": "bob", "n": 2.5, "tags": []any{"x"}, "ignored": true})
	writeAll(t, build(t, "file", M{"path": path, "codec": "csv"}, optest.Env(nil)), recs[:1], recs[1:])
	got, _ := os.ReadFile(path)
	want := "n,name,note\n1,ann,\"a, \"\"quoted\"\"\"\n2.5,bob,\n"
	if string(got) != want {
		t.Errorf("csv\n%s\nwant\n%s", got, want)
	}
	writeAll(t, build(t, "file", M{"path": path, "codec": "csv", "columns": []string{"tags", "name"}, "append": true}, optest.Env(nil)), recs[1:])
	got, _ = os.ReadFile(path)
	if want += "\"[\"\"x\"\"]\",bob\n"; string(got) != want {
		t.Errorf("appended csv without a second header\n%s\nwant\n%s", got, want)
	}
}

// TestFileWritesAroundAnUnencodableRecord checks that a record that cannot
// be encoded costs that record only: the others of its batch are written and
// the error names it, permanent.
func TestFileWritesAroundAnUnencodableRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s := build(t, "file", M{"path": path}, optest.Env(nil))
	ctx := context.Background()
	if err := s.Write(ctx, optest.Records(M{"ok": int64(1)})); err != nil {
		t.Fatal(err)
	}
	bad := optest.Records(M{"ok": int64(2)}, M{"bad": make(chan int)})
	var failed *onerror.Failures
	if err := s.Write(ctx, bad); !errors.As(err, &failed) || len(failed.Errs) != 1 || !onerror.IsPermanent(failed.Errs[1]) {
		t.Fatalf("writing an unencodable record: %v, want a permanent failure of record 1", err)
	}
	if err := s.Write(ctx, optest.Records(M{"ok": int64(3)})); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "{\"ok\":1}\n{\"ok\":2}\n{\"ok\":3}\n"; string(got) != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
}

func TestFileUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := build(t, "file", M{"path": filepath.Join(blocker, "out.jsonl")}, optest.Env(nil))
	err := s.Write(context.Background(), optest.Records(M{}))
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("writing under a file: %v, want a not-a-directory error", err)
	}
}

func TestMemoryAndDiscard(t *testing.T) {
	var m sink.Memory
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Write(context.Background(), optest.Records(M{"i": int64(i)}))
		}()
	}
	wg.Wait()
	m.Close()
	if len(m.Fields()) != 4 || !m.Closed() {
		t.Errorf("memory sink: %v records, closed %v", m.Fields(), m.Closed())
	}
	d := build(t, "discard", nil, optest.Env(nil))
	writeAll(t, d, optest.Records(M{}))
}

func BenchmarkFileJSONL(b *testing.B) {
	path := filepath.Join(b.TempDir(), "out.jsonl")
	s := build(b, "file", M{"path": path}, optest.Env(nil))
	batch := make([]flowruntime.Record, 256)
	for i := range batch {
		batch[i].Fields = M{"id": int64(i), "level": "INFO", "msg": "request served", "latency": 1.5}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
	s.Close()
}
