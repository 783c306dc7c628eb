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

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/supervisor"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/runtime/heap"
)

// cmdRun is `flowrun run`: it plans every pipeline found and runs them all
// until their sources end. The first SIGINT or SIGTERM stops the sources and
// drains what is in flight; a second one stops at once. SIGHUP, and with
// --watch any change to the files, reloads them: an invalid edit is
// reported and changes nothing; a valid one is applied pipeline by pipeline
// (see docs/reload.md). With --watch the command keeps running, watching,
// after every pipeline has finished.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vars := varFlags{}
	fs.Var(vars, "var", "set a variable: `name=value` (repeatable)")
	watch := fs.Bool("watch", false, "reload when a .flow file changes, is added or is removed")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	heapTarget := fs.Int("heap-target", heap.DefaultTargetMiB, "`MiB` the heap may grow to between garbage collections while the live heap is smaller; 0 keeps Go's default, as does setting GOGC or GOMEMLIMIT")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun run [--watch] [--var k=v] [--log-level L] [--log-format text|json] [--heap-target MiB] FILE|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 || (*logFormat != "text" && *logFormat != "json") || *heapTarget < 0 {
		fs.Usage()
		return exitUsage
	}
	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(stderr, "flowrun run: unknown log level %q\n", *logLevel)
		return exitUsage
	}

	plan, sources, diags, err := loadPlan(fs.Args(), vars)
	if err != nil {
		fmt.Fprintf(stderr, "flowrun run: %v\n", err)
		return exitFail
	}
	if diags.HasErrors() {
		_ = diag.WriteText(stderr, diags, sources)
		return exitFail
	}
	defer heap.Tune(*heapTarget)()
	errOut := &lockedWriter{w: stderr}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "flowrun",
		Level:      level,
		JSONFormat: *logFormat == "json",
		Output:     errOut,
	})
	sup := supervisor.New(supervisor.Config{
		Registry: all.Registry(),
		Logger:   logger,
		Stdin:    os.Stdin,
		Stdout:   &lockedWriter{w: stdout},
		Load:     reloader(fs.Args(), vars, errOut, logger),
	})
	if err := runSupervised(ctx, sup, plan, fs.Args(), *watch, logger); err != nil {
		logger.Error("run failed", "error", err)
		return exitFail
	}
	return exitOK
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
func runSupervised(ctx context.Context, sup *supervisor.Supervisor, plan *planner.Plan, args []string, watch bool, logger hclog.Logger) error {
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
				logger.Warn("second signal: stopping at once", "signal", sig.String())
				sup.Kill()
				continue
			}
			stopping = true
			logger.Info("signal: stopping sources and draining", "signal", sig.String())
			stop()
		}
	}
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
