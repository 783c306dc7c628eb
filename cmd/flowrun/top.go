package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/flowrun/flowrun/engine/admin"
	"github.com/flowrun/flowrun/engine/top"
)

// cmdTop is the "top" verb: a terminal dashboard of the flowrun whose
// admin server (run --admin) listens on ADDR, polled every --interval. A
// server that cannot be reached is said on the screen and polled again,
// so top may start before the run. It exits 0 when q or ctrl+c quits, 1
// when the terminal cannot be used, 2 on a usage error.
func cmdTop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Duration("interval", top.DefaultInterval, "how often to poll /api/v1/pipelines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun top [--interval D] ADDR")
		fmt.Fprintln(stderr, "  ADDR is the HOST:PORT given to flowrun run --admin (an empty host is 127.0.0.1)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "flowrun top: want exactly one ADDR")
		fs.Usage()
		return exitUsage
	}
	if *interval <= 0 {
		fmt.Fprintf(stderr, "flowrun top: --interval %s: want more than 0\n", *interval)
		return exitUsage
	}
	addr, err := topAddr(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "flowrun top: %v\n", err)
		return exitUsage
	}
	m := top.New(top.Config{
		Client:   top.Client{Base: "http://" + addr, HTTP: &http.Client{}},
		Addr:     addr,
		Interval: *interval,
		Renderer: lipgloss.NewRenderer(stdout),
	})
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(stdout), tea.WithAltScreen())
	if _, err := p.Run(); err != nil {
		fmt.Fprintf(stderr, "flowrun top: %v\n", err)
		return exitFail
	}
	return exitOK
}

// topAddr checks the ADDR of top, HOST:PORT as given to run --admin (or
// with http:// before it), and returns the one to poll.
func topAddr(arg string) (string, error) {
	addr, err := admin.CheckAddr(strings.TrimSuffix(strings.TrimPrefix(arg, "http://"), "/"))
	if err != nil {
		return "", err
	}
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		return "", fmt.Errorf("admin address %q: port 0 picks a free port when serving; give the port the run logged", arg)
	}
	return addr, nil
}
