package runtime_test

import (
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

func TestCheckpointMovesOnlyOverContiguousFinishedBatches(t *testing.T) {
	c := flowruntime.NewCheckpoint(0)
	first := c.Track(10)
	second := c.Track(25)
	third := c.Track(40)

	steps := []struct {
		finish          func()
		wantCommitted   int64
		wantOutstanding int
	}{
		{second, 0, 3},
		{first, 25, 1},
		{third, 40, 0},
	}
	for i, s := range steps {
		s.finish()
		if got := c.Committed(); got != s.wantCommitted {
			t.Errorf("step %d: Committed() = %d, want %d", i, got, s.wantCommitted)
		}
		if got := c.Outstanding(); got != s.wantOutstanding {
			t.Errorf("step %d: Outstanding() = %d, want %d", i, got, s.wantOutstanding)
		}
	}
}

func TestCheckpointStartsAtGivenPosition(t *testing.T) {
	c := flowruntime.NewCheckpoint(100)
	if got := c.Committed(); got != 100 {
		t.Fatalf("Committed() = %d, want 100", got)
	}
	done := c.Track(180)
	done()
	if got := c.Committed(); got != 180 {
		t.Fatalf("Committed() = %d, want 180", got)
	}
}
