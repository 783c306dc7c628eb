package state_test

import (
	"bufio"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flowrun/flowrun/runtime/state"
)

// The test binary re-executed with one of these variables set is a helper
// process working on the state directory the variable names.
const (
	// holdEnv: open the directory, print "locked", and hold the lock until
	// standard input ends (or the process is killed).
	holdEnv = "FLOWRUN_STATE_TEST_HOLD"
	// saveEnv: open the directory and save snapshots of pipeline "p"
	// with rising sequence numbers for ever, until killed.
	saveEnv = "FLOWRUN_STATE_TEST_SAVE"
)

// TestMain runs the helper processes, or else the tests, failing them if
// any goroutine outlives them.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(holdEnv) != "":
		os.Exit(hold(os.Getenv(holdEnv)))
	case os.Getenv(saveEnv) != "":
		os.Exit(saveForEver(os.Getenv(saveEnv)))
	}
	goleak.VerifyTestMain(m)
}

func hold(dir string) int {
	d, err := state.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString(0) // until EOF
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func saveForEver(dir string) int {
	d, err := state.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := d.Pipeline("p")
	s, err := p.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("saving")
	for seq := s.Sequence + 1; ; seq++ {
		if err := p.Save(numbered(seq)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

// numbered is the snapshot of sequence seq that saveForEver writes: its
// stages are large enough that a write takes several system calls, and
// each says seq, so a torn or mixed snapshot shows.
func numbered(seq uint64) state.Snapshot {
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(seq + uint64(i)/4096)
	}
	return state.Snapshot{
		Sequence: seq,
		Time:     time.Unix(int64(seq), 0),
		Stages: map[string][]byte{
			"src":  fmt.Appendf(nil, `{"offset":%d}`, seq*100),
			"seen": big,
		},
	}
}
