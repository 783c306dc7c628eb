package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/engine/admin"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/source"
	"github.com/flowrun/flowrun/operators/supervisor"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/heap"
	"github.com/flowrun/flowrun/runtime/state"
)

// DefaultDrainTimeout is how long a graceful stop of `flowrun run` waits
// for what is in flight when --drain-timeout is not given.
const DefaultDrainTimeout = 30 * time.Second

// runFlags are the parsed flags of `flowrun run`.
type runFlags struct {
	vars       varFlags
	watch      bool
	level      hclog.Level
	json       bool
	heapTarget int
	// drainTimeout bounds a graceful stop; 0 waits without bound.
	drainTimeout time.Duration
	// stateDir is where the pipelines keep their state ("" keeps none);
	// checkpointInterval how often it is saved.
	stateDir           string
	checkpointInterval time.Duration
	// admin is the address of the admin server ("" serves none).
	admin string
	args  []string
}

// parseRunFlags parses the arguments of `flowrun run`. On a usage error it
// writes why to stderr and returns false.
func parseRunFlags(args []string, stderr io.Writer) (runFlags, bool) {
	f := runFlags{vars: varFlags{}}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(f.vars, "var", "set a variable: `name=value` (repeatable)")
	fs.BoolVar(&f.watch, "watch", false, "reload when a .flow file changes, is added or is removed")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	fs.IntVar(&f.heapTarget, "heap-target", heap.DefaultTargetMiB, "`MiB` the heap may grow to between garbage collections while the live heap is smaller; 0 keeps Go's default, as does setting GOGC or GOMEMLIMIT")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", DefaultDrainTimeout, "how long a graceful stop (signal, or the old version in a reload) waits for the records in flight before it kills the run and exits 1; 0 waits without bound")
	fs.StringVar(&f.stateDir, "state-dir", os.Getenv("FLOWRUN_STATE_DIR"), "`DIR` where each pipeline keeps its state (source positions, stage state, sinks' committed output), so a restarted run resumes where the last one stopped (default $FLOWRUN_STATE_DIR; none when empty)")
	fs.DurationVar(&f.checkpointInterval, "checkpoint-interval", supervisor.DefaultCheckpointInterval, "how often the state is saved with --state-dir")
	fs.StringVar(&f.admin, "admin", "", "serve /metrics, /healthz, /readyz, /api/v1/pipelines and /api/v1/tap on `HOST:PORT` (an empty host is 127.0.0.1; port 0 picks a free one, logged); none when empty")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun run [--watch] [--var k=v] [--log-level L] [--log-format text|json] [--heap-target MiB] [--drain-timeout D] [--state-dir DIR] [--checkpoint-interval D] [--admin HOST:PORT] FILE|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, false
	}
	if fs.NArg() == 0 || (*logFormat != "text" && *logFormat != "json") || f.heapTarget < 0 {
		fs.Usage()
		return f, false
	}
	if f.checkpointInterval <= 0 {
		fmt.Fprintf(stderr, "flowrun run: --checkpoint-interval %s is not positive\n", f.checkpointInterval)
		return f, false
	}
	if f.drainTimeout < 0 {
		fmt.Fprintf(stderr, "flowrun run: --drain-timeout %s is negative (0 waits without bound)\n", f.drainTimeout)
		return f, false
	}
	if f.admin != "" {
		if _, err := admin.CheckAddr(f.admin); err != nil {
			fmt.Fprintf(stderr, "flowrun run: --admin: %v\n", err)
			return f, false
		}
	}
	f.level = hclog.LevelFromString(*logLevel)
	if f.level == hclog.NoLevel {
		fmt.Fprintf(stderr, "flowrun run: unknown log level %q\n", *logLevel)
		return f, false
	}
	f.json = *logFormat == "json"
	f.args = fs.Args()
	return f, true
}

// cmdRun is `flowrun run`: it plans every pipeline found and runs them all
// until their sources end. The first SIGINT or SIGTERM stops the sources and
// drains what is in flight, for at most --drain-timeout: a drain that takes
// longer is cut short by killing the run, which exits 1. A second signal
// stops at once, and exits 1 too: what was in flight is abandoned, not
// acknowledged. SIGHUP, and with --watch any change to the files, reloads
// them: an invalid edit is reported and changes nothing; a valid one is
// applied pipeline by pipeline (see docs/reload.md). With --watch the
// command keeps running, watching, after every pipeline has finished.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, ok := parseRunFlags(args, stderr)
	if !ok {
		return exitUsage
	}
	vars := f.vars

	plan, sources, diags, err := loadPlan(f.args, vars)
	if err != nil {
		fmt.Fprintf(stderr, "flowrun run: %v\n", err)
		return exitFail
	}
	if diags.HasErrors() {
		_ = diag.WriteText(stderr, diags, sources)
		return exitFail
	}
	defer heap.Tune(f.heapTarget)()
	errOut := &lockedWriter{w: stderr}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "flowrun",
		Level:      f.level,
		JSONFormat: f.json,
		Output:     errOut,
	})
	var dir *state.Dir
	if f.stateDir != "" {
		if dir, err = state.Open(f.stateDir); err != nil {
			fmt.Fprintf(stderr, "flowrun run: %v\n", err)
			return exitFail
		}
		defer dir.Close()
	}
	sup := supervisor.New(supervisor.Config{
		Registry:           all.Registry(),
		Logger:             logger,
		Stdin:              source.NewFeed(os.Stdin), // one for every version: a reload hands stdin over at a line
		Stdout:             &lockedWriter{w: stdout},
		Load:               reloader(f.args, vars, errOut, logger),
		DrainTimeout:       f.drainTimeout,
		State:              dir,
		CheckpointInterval: f.checkpointInterval,
	})
	if f.admin != "" {
		srv, err := admin.Listen(f.admin, admin.Config{Supervisor: sup, Logger: logger.Named("admin")})
		if err != nil {
			fmt.Fprintf(stderr, "flowrun run: %v\n", err)
			return exitFail
		}
		defer srv.Close()
	}
	if err := runSupervised(ctx, sup, plan, f.args, f.watch, f.drainTimeout, logger); err != nil {
		logRunError(logger, err, sup.Abandoned())
		return exitFail
	}
	return exitOK
}

// logRunError logs why a run exits 1: a drain that timed out, a stop forced
// by a second signal, pipelines that failed, or several of these.
func logRunError(logger hclog.Logger, err error, abandoned int64) {
	var timedOut *flowruntime.DrainTimeoutError
	var failed []error
	killed := false
	for _, e := range flatten(err) {
		var dt *flowruntime.DrainTimeoutError
		switch {
		case errors.As(e, &dt):
			if timedOut == nil {
				timedOut = dt
			}
		case errors.Is(e, flowruntime.ErrKilled):
			killed = true
		default:
			failed = append(failed, e)
		}
	}
	switch {
	case timedOut != nil:
		logger.Error("drain timed out: the records in flight were abandoned (not acknowledged: a durable source delivers them again)", "drain_timeout", timedOut.Timeout.String(), "abandoned", abandoned)
	case killed:
		logger.Error("stopped at once: the records in flight were abandoned (not acknowledged: a durable source delivers them again)", "abandoned", abandoned)
	}
	if len(failed) > 0 {
		logger.Error("run failed", "error", errors.Join(failed...))
	}
}

// flatten lists the errors joined in err (errors.Join, nested), or err
// alone.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// reloader returns the supervisor's Load: it loads and plans the files
// again and, when they are invalid, writes the diagnostics as validate does.
func reloader(args []string, vars map[string]string, stderr io.Writer, logger hclog.Logger) func() (*planner.Plan, bool) {
	return func() (*planner.Plan, bool) {
		plan, sources, diags, err := loadPlan(args, vars)
		if err != nil {
			logger.Error("reload: cannot load the files", "error", err)
			return nil, false
		}
		if diags.HasErrors() {
			_ = diag.WriteText(stderr, diags, sources)
			return nil, false
		}
		return plan, true
	}
}

// runSupervised runs plan under sup until its pipelines have all finished
// (without watch) or a signal stops it, reloading on SIGHUP and, with
// watch, on changes to the files of args.
func runSupervised(ctx context.Context, sup *supervisor.Supervisor, plan *planner.Plan, args []string, watch bool, drainTimeout time.Duration, logger hclog.Logger) error {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// The watcher starts before the pipelines, so that no edit made while
	// they start is missed.
	var w *supervisor.Watcher
	if watch {
		var err error
		if w, err = supervisor.NewWatcher(args, supervisor.DefaultDebounce, logger.Named("watch")); err != nil {
			return err
		}
	}
	if err := sup.Start(plan); err != nil {
		if w != nil {
			_ = w.Close()
		}
		return err
	}
	if w != nil {
		followed := sup.Follow(w)
		defer func() {
			_ = w.Close()
			<-followed
		}()
		logger.Info("watching for changes", "paths", args)
	}

	var reloads sync.WaitGroup
	defer reloads.Wait()
	finished := make(chan error, 1)
	var waitOnce sync.Once
	stop := func() {
		sup.Stop()
		waitOnce.Do(func() { go func() { finished <- sup.Wait() }() })
	}
	stopping := false
	done := ctx.Done()
	for {
		var idle <-chan struct{}
		if !watch && !stopping {
			idle = sup.Idle()
		}
		select {
		case err := <-finished:
			return err
		case <-idle:
			stopping = true
			stop()
		case <-done:
			done = nil
			stopping = true
			stop()
		case <-hup:
			logger.Info("SIGHUP: reloading")
			reloads.Add(1)
			go func() {
				defer reloads.Done()
				if err := sup.Reload(); err != nil && !errors.Is(err, supervisor.ErrStopped) {
					logger.Error("reload failed", "error", err)
				}
			}()
		case sig := <-signals:
			if stopping {
				logger.Warn("second signal: stopping at once", "signal", sig.String(), "in_flight", sup.InFlight())
				sup.Kill()
				continue
			}
			stopping = true
			logger.Info("signal: stopping sources and draining", "signal", sig.String(), "in_flight", sup.InFlight(), "drain_timeout", drainTimeoutString(drainTimeout))
			stop()
		}
	}
}

// drainTimeoutString is how the log shows a drain timeout.
func drainTimeoutString(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}

// lockedWriter serialises writes from the stdout sinks of several
// pipelines so that their lines never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
