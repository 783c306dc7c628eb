package call

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// execCall runs a command per record: the record as one line of JSON on
// its stdin, the result read from its stdout.
type execCall struct {
	argv []string
	dir  string
}

func (e *execCall) call(ctx context.Context, s *state, rec map[string]any) ([]byte, error) {
	in, err := s.enc.AppendObject(s.buf[:0], rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	in = append(in, '\n')
	s.buf = in
	cmd := exec.CommandContext(ctx, e.argv[0], e.argv[1:]...)
	cmd.Dir = e.dir
	cmd.Stdin = bytes.NewReader(in)
	stdout := &limitedBuffer{max: maxOutput}
	stderr := &limitedBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(string(stderr.buf))
		if msg != "" {
			return nil, fmt.Errorf("%s: %w: %s", e.argv[0], err, msg)
		}
		return nil, fmt.Errorf("%s: %w", e.argv[0], err)
	}
	if stdout.over {
		return nil, fmt.Errorf("%s: output longer than %d bytes", e.argv[0], maxOutput)
	}
	return stdout.buf, nil
}
