package call

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
)

// execCall runs a command per record: the record as one line of JSON on
// its stdin, the result read from its stdout.
type execCall struct {
	argv []string
	dir  string
}

func (e *execCall) call(ctx context.Context, s *state, rec map[string]any) ([]byte, error) {
	in, err := encode(s, rec)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, e.argv[0], e.argv[1:]...)
	cmd.Dir = e.dir
	cmd.Stdin = bytes.NewReader(in)
	stdout := &limitedBuffer{max: maxOutput}
	stderr := &limitedBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(string(stderr.buf)); msg != "" {
			err = fmt.Errorf("%s: %w: %s", e.argv[0], err, msg)
		} else {
			err = fmt.Errorf("%s: %w", e.argv[0], err)
		}
		return nil, classify(err, cmd.ProcessState.ExitCode())
	}
	if stdout.over {
		return nil, fmt.Errorf("%s: output longer than %d bytes", e.argv[0], maxOutput)
	}
	return stdout.buf, nil
}

// encode writes rec into s.buf as the command's input, one line of JSON. A
// record JSON cannot hold (a NaN or an infinite number) is a permanent
// error: it fails the same way every time.
func encode(s *state, rec map[string]any) ([]byte, error) {
	in, err := s.enc.AppendObject(s.buf[:0], rec)
	if err != nil {
		return nil, onerror.Permanent(fmt.Errorf("encode record: %w", err))
	}
	in = append(in, '\n')
	s.buf = in
	return in, nil
}

// classify marks err, a command's failure on a record, permanent where
// running the command again for it cannot change the outcome: the command
// cannot be started (not found, not a file, not executable: the same for
// every record), or it exited with a permanent status (see permanentExit).
// exit is the status it exited with, -1 when it did not exit by itself
// (killed at a timeout, never started). Every other failure is transient:
// a command may fail for a reason of the moment.
func classify(err error, exit int) error {
	if cannotStart(err) || permanentExit(exit) {
		return onerror.Permanent(err)
	}
	return err
}

// cannotStart reports whether err says the command cannot be started.
func cannotStart(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, exec.ErrDot) ||
		errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)
}

// permanentExit reports whether a command that exited with status code
// would exit the same way again for the same record: 126 and 127, the
// shell's "found but cannot be executed" and "not found", and 65,
// EX_DATAERR of sysexits.h ("the input data was incorrect"), with which a
// command says that the record is bad.
func permanentExit(code int) bool {
	return code == 65 || code == 126 || code == 127
}
