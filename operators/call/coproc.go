package call

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// coprocs keeps copies of a command running and exchanges one line per
// record with them: the record as one JSON line on stdin, the result as one
// line on stdout. A copy serves one call at a time, so there are never more
// copies than calls at once (the stage's concurrency). A copy that fails,
// times out or dies is stopped and replaced on the next call. Close stops
// the copies.
type coprocs struct {
	argv []string
	dir  string

	mu     sync.Mutex
	idle   []*coproc
	closed bool
}

type coproc struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	out    *bufio.Reader
	stderr *syncBuffer
}

// errClosed is a call made after the copies were stopped.
var errClosed = errors.New("the command's copies are stopped")

func (p *coprocs) call(ctx context.Context, s *state, rec map[string]any) ([]byte, error) {
	in, err := encode(s, rec)
	if err != nil {
		return nil, err
	}
	c, err := p.get()
	if err != nil {
		return nil, classify(err, -1)
	}
	deadline, _ := ctx.Deadline() // the zero time means none
	c.stdin.SetWriteDeadline(deadline)
	c.stdout.SetReadDeadline(deadline)
	out, err := c.exchange(in, s.out[:0])
	if err != nil {
		// The copy is in an unknown state: it goes. One that ended by
		// itself is classified by its exit status (killing it then
		// changes nothing).
		c.cmd.Process.Kill()
		c.stop()
		exit := c.cmd.ProcessState.ExitCode()
		status := ""
		if exit >= 0 {
			status = fmt.Sprintf(" (exit status %d)", exit)
		}
		return nil, classify(fmt.Errorf("%s: %w%s%s", p.argv[0], err, status, c.stderrTail()), exit)
	}
	s.out = out
	p.put(c)
	return out, nil
}

// exchange writes one line and reads one back into dst.
func (c *coproc) exchange(line, dst []byte) ([]byte, error) {
	if _, err := c.stdin.Write(line); err != nil {
		if errors.Is(err, syscall.EPIPE) {
			return nil, errors.New("the command ended before reading the record")
		}
		return nil, fmt.Errorf("write: %w", err)
	}
	for {
		chunk, err := c.out.ReadSlice('\n')
		dst = append(dst, chunk...)
		if len(dst) > maxOutput {
			return nil, fmt.Errorf("output line longer than %d bytes", maxOutput)
		}
		switch {
		case err == nil:
			return dst, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, errors.New("the command ended before answering")
		default:
			return nil, fmt.Errorf("read: %w", err)
		}
	}
}

func (c *coproc) stderrTail() string {
	if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
		return ": " + msg
	}
	return ""
}

func (p *coprocs) get() (*coproc, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return p.start()
}

func (p *coprocs) put(c *coproc) {
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.stop()
}

func (p *coprocs) start() (*coproc, error) {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("pipe: %w", err)
	}
	c := &coproc{cmd: cmd, stdin: inW, stdout: outR, out: bufio.NewReaderSize(outR, 64<<10), stderr: &syncBuffer{b: limitedBuffer{max: 4 << 10}}}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start %s: %w", p.argv[0], err)
	}
	return c, nil
}

// stop ends the copy: its stdin is closed so it can finish on its own, and
// it is killed if it has not after a grace period.
func (c *coproc) stop() {
	c.stdin.Close()
	kill := time.AfterFunc(time.Second, func() { c.cmd.Process.Kill() })
	c.cmd.Wait()
	kill.Stop()
	c.stdout.Close()
}

// Close stops every idle copy; copies in use stop when their call ends.
func (p *coprocs) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop()
		}()
	}
	wg.Wait()
	return nil
}

// syncBuffer is a limitedBuffer written by the goroutine os/exec runs to
// copy stderr and read by stderrTail.
type syncBuffer struct {
	mu sync.Mutex
	b  limitedBuffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b.buf)
}
