package source

import (
	"slices"
	"testing"
)

// TestResumedCheckpointBeforeRun: a file source resumed from a checkpoint
// reports that checkpoint until it has read on, so a snapshot taken before
// it opens its files does not send it back to their start.
func TestResumedCheckpointBeforeRun(t *testing.T) {
	f := &File{stream: stream{positions: &positions{}}}
	want := []Position{{File: "a.jsonl", Offset: 100}, {File: "b.jsonl", Offset: 7}}
	if err := f.Resume(want); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Checkpoint().([]Position); !slices.Equal(got, want) {
		t.Errorf("checkpoint before Run = %v, want %v", got, want)
	}
}
