package sink_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flowrun/flowrun/operators/internal/optest"
)

// TestFileResumeAppends checks that a file sink built for a resumed
// pipeline (a hot reload's handover) appends to what the earlier version
// wrote, without a second csv header, while a fresh one truncates.
func TestFileResumeAppends(t *testing.T) {
	tests := []struct {
		codec  string
		resume bool
		want   string
	}{
		{"jsonl", false, "{\"n\":2}\n"},
		{"jsonl", true, "{\"n\":1}\n{\"n\":2}\n"},
		{"csv", true, "n\n1\n2\n"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "out")
		writeAll(t, build(t, "file", M{"path": path, "codec": tt.codec}, optest.Env(nil)), optest.Records(M{"n": int64(1)}))
		env := optest.Env(nil)
		env.Resume = tt.resume
		writeAll(t, build(t, "file", M{"path": path, "codec": tt.codec}, env), optest.Records(M{"n": int64(2)}))
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("%s resume=%t: file holds %q, want %q", tt.codec, tt.resume, got, tt.want)
		}
	}
}
