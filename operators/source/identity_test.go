package source_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/source"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// logBuffer is a logger's output, read while a source writes it.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// loggedEnv is optest.Env with a logger writing into the returned buffer.
func loggedEnv() (operators.BuildEnv, *logBuffer) {
	logs := &logBuffer{}
	env := optest.Env(nil)
	env.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	return env, logs
}

// checkpoint returns the source's checkpoint, as a run saves it to disk and
// reads it back.
func checkpoint(t *testing.T, s flowruntime.Source) any {
	t.Helper()
	return jsonRoundTrip(t, s.(flowruntime.Checkpointer).Checkpoint())
}

// resumed builds a file source with opts and resumes it from cp.
func resumed(t *testing.T, opts M, env operators.BuildEnv, cp any) flowruntime.Source {
	t.Helper()
	s := build(t, "file", opts, env)
	if err := s.(flowruntime.Resumer).Resume(cp); err != nil {
		t.Fatal(err)
	}
	return s
}

// readLines runs a source to its end and returns the lines it read.
func readLines(t *testing.T, s flowruntime.Source) []string {
	t.Helper()
	e, err := run(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return lines(e)
}

// followed is a source running in follow mode until stop.
type followed struct {
	t      *testing.T
	e      optest.Emitter
	cancel context.CancelFunc
	done   chan error
}

func startFollow(t *testing.T, s flowruntime.Source) *followed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &followed{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- s.Run(ctx, &f.e) }()
	t.Cleanup(func() { f.stop() })
	return f
}

// wait waits until the lines read are want, and fails when they are not
// within 5 seconds.
func (f *followed) wait(want ...string) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cmp.Equal(want, lines(&f.e)) {
		if time.Now().After(deadline) {
			f.t.Fatalf("lines = %q, want %q", lines(&f.e), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop ends the run, which must end without an error.
func (f *followed) stop() {
	f.t.Helper()
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	if err := <-f.done; err != nil {
		f.t.Errorf("Run after cancel = %v", err)
	}
}

// TestFileIdentity: a file's position holds its absolute path, its device
// and inode, and the fingerprint of its first min(1 KiB, offset) bytes,
// which changes only as long as the offset is under 1 KiB.
func TestFileIdentity(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write(t, "a.log", "a1\n")
	s := build(t, "file", M{"path": "a.log"}, optest.Env(nil))
	readLines(t, s)
	cp := s.(flowruntime.Checkpointer).Checkpoint().([]source.Position)
	info, err := os.Stat("a.log")
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if len(cp) != 1 {
		t.Fatalf("checkpoint %v, want one position", cp)
	}
	p := cp[0]
	if p.File != filepath.Join(dir, "a.log") || p.Offset != 3 || p.Device != uint64(st.Dev) || p.Inode != st.Ino || len(p.Fingerprint) != 16 {
		t.Errorf("position %+v, want %s at 3 on device %d, inode %d, with a fingerprint", p, filepath.Join(dir, "a.log"), st.Dev, st.Ino)
	}
	b, _ := json.Marshal(p)
	if !strings.HasPrefix(string(b), `{"file":`+`"`+filepath.Join(dir, "a.log")+`","offset":3,"dev":`) {
		t.Errorf("position as JSON = %s: want file and offset first", b)
	}

	// The fingerprint covers the first min(1 KiB, offset) bytes.
	fp := func(text string) string {
		write(t, "b.log", text)
		s := build(t, "file", M{"path": "b.log"}, optest.Env(nil))
		readLines(t, s)
		return s.(flowruntime.Checkpointer).Checkpoint().([]source.Position)[0].Fingerprint
	}
	k := strings.Repeat("k", 1100) + "\n"
	if fp("a1\n") != p.Fingerprint || fp("a1\nmore\n") == p.Fingerprint || fp(k) != fp(k+"more\n") {
		t.Errorf("the fingerprint should cover the first min(1 KiB, offset) bytes")
	}
}

// TestFileResumeByIdentity: a resumed file source finds each saved file by
// its identity, from another working directory and under another name, and
// reads on after its offset.
func TestFileResumeByIdentity(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(sub, "a.log"), "a1\n")
	write(t, filepath.Join(sub, "b.log"), "b1\n")

	// Run in sub/, as `flowrun run p.flow` does there.
	t.Chdir(sub)
	first := build(t, "file", M{"path": "*.log"}, optest.Env(nil))
	readLines(t, first)
	cp := checkpoint(t, first)

	// Resumed from the parent directory (`flowrun run sub/p.flow`), after
	// b.log was renamed to c.log (which the glob matches) and both grew.
	t.Chdir(dir)
	appendTo(t, filepath.Join(sub, "a.log"), "a2\n")
	appendTo(t, filepath.Join(sub, "b.log"), "b2\n")
	if err := os.Rename(filepath.Join(sub, "b.log"), filepath.Join(sub, "c.log")); err != nil {
		t.Fatal(err)
	}
	env, logs := loggedEnv()
	next := resumed(t, M{"path": "sub/*.log"}, env, cp)
	if diff := cmp.Diff([]string{"a2", "b2"}, readLines(t, next)); diff != "" {
		t.Errorf("resumed run read (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "file renamed while flowrun was stopped") {
		t.Errorf("the rename is not logged:\n%s", logs)
	}
	want := []source.Position{{File: filepath.Join(sub, "a.log"), Offset: 6}, {File: filepath.Join(sub, "c.log"), Offset: 6}}
	if diff := cmp.Diff(want, next.(flowruntime.Checkpointer).Checkpoint(), byPath); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
}

// TestFileResumeOldCheckpoint: a checkpoint saved before positions kept the
// file's identity ({file, offset}, the file as the run resolved it) still
// resumes, by path.
func TestFileResumeOldCheckpoint(t *testing.T) {
	t.Chdir(t.TempDir())
	write(t, "in.log", "1\n2\n3\n")
	var cp any
	if err := json.Unmarshal([]byte(`[{"file":"in.log","offset":2}]`), &cp); err != nil {
		t.Fatal(err)
	}
	s := resumed(t, M{"path": "in.log"}, optest.Env(nil), cp)
	if diff := cmp.Diff([]string{"2", "3"}, readLines(t, s)); diff != "" {
		t.Errorf("resumed run read (-want +got):\n%s", diff)
	}
}

// TestFileResumeChangedWhileStopped: what a resumed file source does with a
// saved file that changed while flowrun was stopped.
func TestFileResumeChangedWhileStopped(t *testing.T) {
	for _, tt := range []struct {
		name string
		// change changes the file app.log, read to its end ("1\n2\n"),
		// in dir.
		change func(t *testing.T, path string)
		opts   M
		want   []string
		log    string
	}{{
		name: "copied: another inode, the same first bytes",
		change: func(t *testing.T, path string) {
			write(t, path+".tmp", "1\n2\n3\n")
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"3"},
		log:  "file has another inode than saved but the same first bytes",
	}, {
		name:   "truncated",
		change: func(t *testing.T, path string) { write(t, path, "x\n") },
		want:   []string{"x"},
		log:    "file truncated while flowrun was stopped: reading it from the start",
	}, {
		name: "replaced, the old one removed",
		change: func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			write(t, path, "new 1\nnew 2\nnew 3\n")
		},
		opts: M{"start_at": "end"}, // a new file at a saved path is read from its start
		want: []string{"new 1", "new 2", "new 3"},
		log:  "a file read before is gone: its position is forgotten: file=",
	}, {
		name: "rotated beside it: its rest first, then the new file",
		change: func(t *testing.T, path string) {
			appendTo(t, path, "3\n4")
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			write(t, path, "new 1\n")
		},
		want: []string{"3", "4", "new 1"},
		log:  "file rotated while flowrun was stopped: reading the rest of it first",
	}} {
		for _, follow := range []bool{false, true} {
			t.Run(tt.name+map[bool]string{true: ", followed"}[follow], func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "app.log")
				write(t, path, "1\n2\n")
				opts := M{"path": path, "follow": follow, "poll_interval": 5 * time.Millisecond}
				first := build(t, "file", opts, optest.Env(nil))
				if follow {
					f := startFollow(t, first)
					f.wait("1", "2")
					f.stop()
				} else {
					readLines(t, first)
				}
				cp := checkpoint(t, first)
				tt.change(t, path)
				for k, v := range tt.opts {
					opts[k] = v
				}
				env, logs := loggedEnv()
				next := resumed(t, opts, env, cp)
				if follow {
					startFollow(t, next).wait(tt.want...)
				} else if diff := cmp.Diff(tt.want, readLines(t, next)); diff != "" {
					t.Errorf("resumed run read (-want +got):\n%s", diff)
				}
				if !strings.Contains(logs.String(), tt.log) {
					t.Errorf("the log does not say %q:\n%s", tt.log, logs)
				}
			})
		}
	}
}

// TestFileRotatedFileForgotten: once every line of a rotated file is
// finished, its position is left out of the checkpoint, unless the glob
// matches it.
func TestFileRotatedFileForgotten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "1\n")
	first := build(t, "file", M{"path": path}, optest.Env(nil))
	readLines(t, first)
	cp := checkpoint(t, first)
	appendTo(t, path, "2\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path, "3\n")
	next := resumed(t, M{"path": path}, optest.Env(nil), cp)
	if diff := cmp.Diff([]string{"2", "3"}, readLines(t, next)); diff != "" {
		t.Errorf("resumed run read (-want +got):\n%s", diff)
	}
	want := []source.Position{{File: path, Offset: 2}}
	if diff := cmp.Diff(want, next.(flowruntime.Checkpointer).Checkpoint(), byPath); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
}

// TestFileFollowRotationWithinGlob: a followed file rotated under a name
// the glob matches too (app.log → app.log.1 with app.log*) is not read
// again from its start: it goes on from where it was read to.
func TestFileFollowRotationWithinGlob(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	write(t, path, "1\n")
	s := build(t, "file", M{"path": filepath.Join(dir, "app.log*"), "follow": true, "poll_interval": 5 * time.Millisecond}, optest.Env(nil))
	f := startFollow(t, s)
	f.wait("1")
	appendTo(t, path, "2\n")
	f.wait("1", "2")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path, "new 1\n")
	f.wait("1", "2", "new 1")
	appendTo(t, path+".1", "3\n")
	f.wait("1", "2", "new 1", "3")
	f.stop()
	want := []source.Position{{File: path + ".1", Offset: 6}, {File: path, Offset: 6}}
	if diff := cmp.Diff(want, s.(flowruntime.Checkpointer).Checkpoint(), byPath); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
}
