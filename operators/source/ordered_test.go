package source_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/source"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestFileJSONKeepsOrderAcrossWorkers reads two JSON files of many batches,
// decoded on every core: the records come out in file order with their
// positions, batches stay full across the two files, and the checkpoint
// ends at both files' ends.
func TestFileJSONKeepsOrderAcrossWorkers(t *testing.T) {
	dir := t.TempDir()
	var files []string
	var offsets []int64
	i := 0
	for _, name := range []string{"a.jsonl", "b.jsonl"} {
		var b strings.Builder
		for range 2000 {
			fmt.Fprintf(&b, "{\"i\":%d}\n", i)
			i++
		}
		path := filepath.Join(dir, name)
		write(t, path, b.String())
		files = append(files, path)
		offsets = append(offsets, int64(b.Len()))
	}
	src := build(t, "file", M{"path": filepath.Join(dir, "*.jsonl"), "codec": "json"}, optest.Env(nil))
	e, err := run(t, src)
	if err != nil {
		t.Fatal(err)
	}
	recs := e.Records()
	if len(recs) != 4000 {
		t.Fatalf("got %d records, want 4000", len(recs))
	}
	for k, r := range recs {
		if r.Fields["i"] != int64(k) {
			t.Fatalf("record %d is %v: out of order", k, r.Fields)
		}
		wantFile := files[k/2000]
		if r.Meta.File != wantFile {
			t.Fatalf("record %d from %s, want %s", k, r.Meta.File, wantFile)
		}
		if k > 0 && r.Meta.File == recs[k-1].Meta.File && r.Meta.Position <= recs[k-1].Meta.Position {
			t.Fatalf("record %d at %d, after %d", k, r.Meta.Position, recs[k-1].Meta.Position)
		}
	}
	if want := (4000 + 255) / 256; e.Calls() != want {
		t.Errorf("emitted in %d batches, want %d full ones across both files", e.Calls(), want)
	}
	want := []source.Position{{File: files[0], Offset: offsets[0]}, {File: files[1], Offset: offsets[1]}}
	if diff := cmp.Diff(want, src.(flowruntime.Checkpointer).Checkpoint(), byPath); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
}

// failingEmitter fails the emit of its second batch.
type failingEmitter struct{ calls int }

var errSinkGone = errors.New("sink gone")

func (f *failingEmitter) Emit(context.Context, []flowruntime.Record, func()) error {
	f.calls++
	if f.calls == 2 {
		return errSinkGone
	}
	return nil
}

// TestParallelEmitFailureStopsTheSource: when an emit fails, the sources
// that build batches on every core stop and return its error, leaving no
// worker behind (goleak in TestMain).
func TestParallelEmitFailureStopsTheSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.jsonl")
	write(t, path, strings.Repeat("{\"a\":1}\n", 5000))
	for _, tt := range []struct {
		kind string
		opts M
	}{
		{"file", M{"path": path, "codec": "json"}},
		{"generate", M{"count": 5000}},
		{"generate", M{}},
	} {
		src := build(t, tt.kind, tt.opts, optest.Env(nil))
		em := &failingEmitter{}
		if err := src.Run(context.Background(), em); !errors.Is(err, errSinkGone) {
			t.Errorf("%s %v: Run = %v, want the emit's error", tt.kind, tt.opts, err)
		}
		if em.calls != 2 {
			t.Errorf("%s %v: %d emits, want none after the failed one", tt.kind, tt.opts, em.calls)
		}
	}
}
