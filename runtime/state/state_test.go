package state_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowrun/flowrun/runtime/state"
)

func open(t *testing.T, dir string) *state.Dir {
	t.Helper()
	d, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// equal compares snapshots: times by instant, nil and empty blobs alike.
var equal = cmp.Options{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })}

func TestRoundTrip(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		snap state.Snapshot
		// body is a string the file's body must contain.
		body string
	}{
		{"no stage", state.Snapshot{Sequence: 1, Time: at}, `"stages":{}`},
		{"compact JSON embedded", state.Snapshot{Sequence: 2, Time: at, Stages: map[string][]byte{"logs": []byte(`{"files":[{"inode":12,"offset":4096}]}`)}},
			`"logs":{"json":{"files":[{"inode":12,"offset":4096}]}}`},
		{"JSON with HTML characters kept", state.Snapshot{Sequence: 3, Time: at, Stages: map[string][]byte{"m": []byte(`"<a>&b"`)}}, `{"json":"<a>&b"}`},
		{"JSON that is not compact as base64", state.Snapshot{Sequence: 4, Time: at, Stages: map[string][]byte{"m": []byte("{ \"a\": 1 }\n")}}, `"base64":"eyAiYSI6IDEgfQo="`},
		{"binary as base64", state.Snapshot{Sequence: 5, Time: at, Stages: map[string][]byte{"seen": {0, 1, 2, 0xff}}}, `"seen":{"base64":"AAEC/w=="}`},
		{"empty and nil blobs", state.Snapshot{Sequence: 6, Time: at, Stages: map[string][]byte{"a": {}, "b": nil}}, `"a":{"base64":""}`},
		{"JSON null and numbers", state.Snapshot{Sequence: 7, Time: at, Stages: map[string][]byte{"n": []byte("null"), "x": []byte("12345678901234567890")}}, `"n":{"json":null}`},
		{"largest sequence, unicode stage names", state.Snapshot{Sequence: math.MaxUint64, Time: at, Stages: map[string][]byte{"ünï": []byte(`1`), "": []byte(`2`)}}, `"sequence":18446744073709551615`},
		{"zero time", state.Snapshot{Sequence: 8, Stages: map[string][]byte{"a": []byte(`[]`)}}, `"time":"0001-01-01T00:00:00Z"`},
	}
	d := open(t, t.TempDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := d.Pipeline("p")
			if err := p.Save(tt.snap); err != nil {
				t.Fatal(err)
			}
			got, err := p.Load()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.snap, got, equal); diff != "" {
				t.Errorf("loaded snapshot differs (-saved +loaded):\n%s", diff)
			}
			for name, blob := range tt.snap.Stages {
				if !bytes.Equal(got.Stages[name], blob) {
					t.Errorf("stage %q: loaded %q, saved %q", name, got.Stages[name], blob)
				}
			}
			data, err := os.ReadFile(p.File())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("flowrun state\n")) || !bytes.Contains(data, []byte(tt.body)) {
				t.Errorf("file %q does not hold %s", data, tt.body)
			}
		})
	}
}

func TestLoadWithoutState(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "new", "state"))
	s, err := d.Pipeline("p").Load()
	if err != nil || s.Sequence != 0 || s.Stages != nil || !s.Time.IsZero() {
		t.Errorf("Load of a pipeline without state: %+v, %v; want the empty snapshot", s, err)
	}
}

// frame returns a snapshot file with the given version and body, its
// header computed as the format says.
func frame(version uint16, body string) []byte {
	b := []byte("flowrun state\n")
	b = binary.BigEndian.AppendUint16(b, version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli)))
	return append(b, body...)
}

// TestUnusableFile checks that every kind of bad snapshot file is an error
// naming the file and what is wrong, that Save then leaves the file as it
// is, and that Reset clears the way.
func TestUnusableFile(t *testing.T) {
	const good = `{"pipeline":"p","sequence":3,"time":"2025-01-02T03:04:05Z","stages":{"s":{"json":1}}}` + "\n"
	valid := frame(1, good)
	random := make([]byte, 300)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-10] ^= 0x01
	tests := []struct {
		name    string
		content []byte
		is      error
		want    string
	}{
		{"empty", nil, state.ErrCorrupt, "the file is empty (truncated)"},
		{"truncated in the magic", valid[:5], state.ErrCorrupt, "truncated in its header"},
		{"truncated in the header", valid[:20], state.ErrCorrupt, "truncated in its header"},
		{"truncated body", valid[:len(valid)-7], state.ErrCorrupt, "truncated: the header announces"},
		{"random bytes", random, state.ErrCorrupt, "not a flowrun state file"},
		{"wrong magic", append([]byte("flowrun stats\n"), valid[14:]...), state.ErrCorrupt, "not a flowrun state file"},
		{"a JSON file", []byte(good), state.ErrCorrupt, "not a flowrun state file"},
		{"newer version", frame(2, good), state.ErrVersion, "unsupported format version 2 (this flowrun reads version 1: a newer flowrun wrote it)"},
		{"version 0", frame(0, good), state.ErrVersion, "unsupported format version 0 (this flowrun reads version 1)"},
		{"bad checksum", flipped, state.ErrCorrupt, "checksum mismatch"},
		{"data after the body", append(bytes.Clone(valid), "xx"...), state.ErrCorrupt, "2 bytes after the end of the body"},
		{"body not JSON", frame(1, "{not json"), state.ErrCorrupt, "body:"},
		{"unknown field", frame(1, `{"pipeline":"p","extra":1}`), state.ErrCorrupt, `unknown field "extra"`},
		{"two JSON values", frame(1, good+"{}"), state.ErrCorrupt, "data after the snapshot object"},
		{"no pipeline", frame(1, `{"sequence":1}`), state.ErrCorrupt, "no pipeline name"},
		{"another pipeline's state", frame(1, strings.Replace(good, `"p"`, `"q"`, 1)), state.ErrCorrupt, `it holds the state of pipeline "q", not of "p"`},
		{"stage without a blob", frame(1, `{"pipeline":"p","stages":{"s":{}}}`), state.ErrCorrupt, `stage "s" holds neither json nor base64`},
		{"stage with both", frame(1, `{"pipeline":"p","stages":{"s":{"json":1,"base64":""}}}`), state.ErrCorrupt, `stage "s" holds neither json nor base64, or both`},
		{"bad base64", frame(1, `{"pipeline":"p","stages":{"s":{"base64":"!!"}}}`), state.ErrCorrupt, `stage "s": illegal base64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			file := filepath.Join(root, "p", "snapshot")
			if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			d := open(t, root)
			p := d.Pipeline("p")
			s, err := p.Load()
			var fe *state.FileError
			if !errors.As(err, &fe) || fe.Path != file || !errors.Is(err, tt.is) {
				t.Fatalf("Load: %+v, %v; want a FileError of %s wrapping %v", s, err, file, tt.is)
			}
			if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, tt.want) {
				t.Errorf("Load: %q, want the file named and %q", msg, tt.want)
			}
			if s.Sequence != 0 || s.Stages != nil {
				t.Errorf("Load gave %+v with its error", s)
			}
			// Save refuses, through a handle that loaded and through one that
			// did not (another Dir), and the file stays as it was.
			if err := p.Save(state.Snapshot{Sequence: 9}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "not saved") {
				t.Errorf("Save over an unusable file: %v, want a refusal wrapping the FileError", err)
			}
			d.Close()
			d = open(t, root)
			if err := d.Pipeline("p").Save(state.Snapshot{Sequence: 9}); !errors.As(err, &fe) {
				t.Errorf("Save over an unusable file without Load: %v, want a refusal", err)
			}
			if got, _ := os.ReadFile(file); !bytes.Equal(got, tt.content) {
				t.Errorf("the unusable file was changed to %q", got)
			}
			if lst, err := state.List(root); err != nil || len(lst) != 1 || !errors.As(lst[0].Err, &fe) {
				t.Errorf("List: %+v, %v; want the pipeline with its FileError", lst, err)
			}
			// Reset clears the way.
			if err := d.Reset("p"); err != nil {
				t.Fatal(err)
			}
			p = d.Pipeline("p")
			if s, err := p.Load(); err != nil || s.Sequence != 0 {
				t.Errorf("Load after Reset: %+v, %v; want the empty snapshot", s, err)
			}
			if err := p.Save(state.Snapshot{Sequence: 9}); err != nil {
				t.Errorf("Save after Reset: %v", err)
			}
			if s, err := p.Load(); err != nil || s.Sequence != 9 {
				t.Errorf("Load after Reset and Save: %+v, %v", s, err)
			}
		})
	}
}

// TestPartialSaveIsIgnored checks what a Save cut short by a crash leaves:
// a temporary file beside the snapshot (or alone). Load reads the last
// whole snapshot, removes the temporary file, and List passes it over.
func TestPartialSaveIsIgnored(t *testing.T) {
	for _, withSnapshot := range []bool{true, false} {
		root := t.TempDir()
		d := open(t, root)
		p := d.Pipeline("p")
		want := state.Snapshot{}
		if withSnapshot {
			want = state.Snapshot{Sequence: 4, Time: time.Unix(4, 0), Stages: map[string][]byte{"s": []byte(`4`)}}
			if err := p.Save(want); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Mkdir(filepath.Join(root, "p"), 0o700); err != nil {
			t.Fatal(err)
		}
		whole, _ := os.ReadFile(p.File())
		torn := filepath.Join(root, "p", "snapshot.tmp-123456")
		if err := os.WriteFile(torn, frame(1, `{"pipeline":"p","seq`)[:30], 0o600); err != nil {
			t.Fatal(err)
		}
		lst, err := state.List(root)
		if err != nil || len(lst) != map[bool]int{true: 1, false: 0}[withSnapshot] {
			t.Errorf("List beside a partial save: %+v, %v", lst, err)
		}
		got, err := p.Load()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, equal); diff != "" {
			t.Errorf("Load beside a partial save (-want +got):\n%s", diff)
		}
		if _, err := os.Stat(torn); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the partial save is still there: %v", err)
		}
		if now, _ := os.ReadFile(p.File()); !bytes.Equal(now, whole) {
			t.Errorf("the snapshot changed")
		}
	}
}

// TestSaveLeavesNoTemporaryFile checks that a Save leaves the pipeline's
// directory with the snapshot only, readable by its owner only.
func TestSaveLeavesNoTemporaryFile(t *testing.T) {
	root := t.TempDir()
	d := open(t, root)
	for seq := range uint64(3) {
		if err := d.Pipeline("p").Save(state.Snapshot{Sequence: seq + 1}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "p"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "snapshot" {
		t.Fatalf("pipeline directory holds %v, %v; want the snapshot alone", entries, err)
	}
	for _, path := range []string{filepath.Join(root, "p"), filepath.Join(root, "p", "snapshot"), filepath.Join(root, "LOCK")} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, %v; want it private to its owner", path, info.Mode(), err)
		}
	}
}

// TestPipelineNames checks that every pipeline name is kept in a
// directory of its own, directly in the state directory, and that List
// gives the names back.
func TestPipelineNames(t *testing.T) {
	tests := []struct{ name, dir string }{
		{"error_alerts", "error_alerts"},
		{"Logs-2", "Logs-2"},
		{"logs.v2", "logs%2Ev2"},
		{"a/b", "a%2Fb"},
		{"..", "%2E%2E"},
		{".", "%2E"},
		{"../../etc", "%2E%2E%2F%2E%2E%2Fetc"},
		{"with space", "with%20space"},
		{"100%", "100%25"},
		{"ünï", "%C3%BCn%C3%AF"},
		{"LOCK", "%4COCK"},
		{"lock", "%6Cock"},
		{"LOCKS", "LOCKS"},
	}
	root := t.TempDir()
	d := open(t, root)
	var want []string
	for i, tt := range tests {
		p := d.Pipeline(tt.name)
		if err := p.Save(state.Snapshot{Sequence: uint64(i + 1)}); err != nil {
			t.Fatalf("%q: %v", tt.name, err)
		}
		if p.File() != filepath.Join(root, tt.dir, "snapshot") {
			t.Errorf("%q is kept in %s, want %s", tt.name, p.File(), filepath.Join(root, tt.dir, "snapshot"))
		}
		want = append(want, tt.name)
	}
	lst, err := state.List(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ps := range lst {
		if ps.Err != nil {
			t.Errorf("%q: %v", ps.Pipeline, ps.Err)
		}
		got = append(got, ps.Pipeline)
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("List names (-want +got):\n%s", diff)
	}
	if d.Pipeline("a/b") != d.Pipeline("a/b") {
		t.Error("two calls of Pipeline with one name gave two Pipelines")
	}
	if _, err := d.Pipeline("").Load(); err == nil || !strings.Contains(err.Error(), "empty pipeline name") {
		t.Errorf("Load of an empty name: %v", err)
	}
	if err := d.Pipeline("").Save(state.Snapshot{}); err == nil {
		t.Error("Save of an empty name succeeded")
	}
}

// TestList checks List's entries: one per pipeline with a snapshot, sorted,
// unusable ones with their error, and whatever else is in the directory
// passed over; it reads while another Dir holds the lock.
func TestList(t *testing.T) {
	root := t.TempDir()
	d := open(t, root)
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, name := range []string{"zeta", "alpha"} {
		if err := d.Pipeline(name).Save(state.Snapshot{Sequence: 7, Time: at, Stages: map[string][]byte{"b": []byte(`1`), "a": []byte(`2`)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"broken", "empty", "not%zz", "x%2e"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "broken", "snapshot"), []byte("garbage"), 0o600)
	os.WriteFile(filepath.Join(root, "not%zz", "snapshot"), frame(1, `{"pipeline":"x"}`), 0o600)
	os.WriteFile(filepath.Join(root, "x%2e", "snapshot"), frame(1, `{"pipeline":"x."}`), 0o600)
	os.WriteFile(filepath.Join(root, "notes"), []byte("a file, not a pipeline"), 0o600)

	lst, err := state.List(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(lst) != 3 {
		t.Fatalf("List: %+v, want alpha, broken and zeta", lst)
	}
	for i, name := range []string{"alpha", "broken", "zeta"} {
		ps := lst[i]
		if ps.Pipeline != name || ps.File != filepath.Join(root, name, "snapshot") {
			t.Errorf("entry %d: %s in %s, want %s", i, ps.Pipeline, ps.File, name)
		}
		if name == "broken" {
			if !errors.Is(ps.Err, state.ErrCorrupt) || !strings.Contains(ps.Err.Error(), ps.File) {
				t.Errorf("broken: %v", ps.Err)
			}
			continue
		}
		if ps.Err != nil || ps.Snapshot.Sequence != 7 || !ps.Snapshot.Time.Equal(at) || !cmp.Equal(ps.Snapshot.StageNames(), []string{"a", "b"}) {
			t.Errorf("%s: %+v", name, ps)
		}
	}
	if _, err := state.List(filepath.Join(root, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("List of a missing directory: %v", err)
	}
}

// TestClosed checks that a closed Dir does nothing more and lets another
// Open take the directory.
func TestClosed(t *testing.T) {
	root := t.TempDir()
	d := open(t, root)
	p := d.Pipeline("p")
	if err := p.Save(state.Snapshot{Sequence: 1}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.Load(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if err := p.Save(state.Snapshot{Sequence: 2}); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Save after Close: %v", err)
	}
	if err := d.Reset("p"); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Reset after Close: %v", err)
	}
	if lock, _ := os.ReadFile(filepath.Join(root, "LOCK")); len(lock) != 0 {
		t.Errorf("the lock file still names a holder: %q", lock)
	}
	s, err := open(t, root).Pipeline("p").Load()
	if err != nil || s.Sequence != 1 {
		t.Errorf("Load after reopening: %+v, %v", s, err)
	}
}

// TestConcurrentUse saves, loads and lists from several goroutines, then
// closes the Dir while they may still run (for the race detector): every
// call either works or fails with ErrClosed.
func TestConcurrentUse(t *testing.T) {
	root := t.TempDir()
	d, err := state.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := d.Pipeline([]string{"a", "b"}[g%2])
			for seq := range uint64(20) {
				if err := p.Save(state.Snapshot{Sequence: seq + 1}); err != nil && !errors.Is(err, state.ErrClosed) {
					t.Error(err)
				}
				if _, err := p.Load(); err != nil && !errors.Is(err, state.ErrClosed) {
					t.Error(err)
				}
				if _, err := state.List(root); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}
