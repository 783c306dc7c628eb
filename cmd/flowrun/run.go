package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// cmdRun is `flowrun run`: it plans every pipeline found and runs them all
// until their sources end. The first SIGINT or SIGTERM stops the sources and
// drains what is in flight; a second one stops at once.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vars := varFlags{}
	fs.Var(vars, "var", "set a variable: `name=value` (repeatable)")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun run [--var k=v] [--log-level L] [--log-format text|json] FILE|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 || (*logFormat != "text" && *logFormat != "json") {
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
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "flowrun",
		Level:      level,
		JSONFormat: *logFormat == "json",
		Output:     stderr,
	})
	if err := runPlan(ctx, plan, logger, &lockedWriter{w: stdout}); err != nil {
		logger.Error("run failed", "error", err)
		return exitFail
	}
	return exitOK
}

// runPlan starts every pipeline of plan and waits for all of them to finish.
func runPlan(ctx context.Context, plan *planner.Plan, logger hclog.Logger, stdout io.Writer) error {
	if len(plan.Pipelines) == 0 {
		return errors.New("no pipeline to run")
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)

	reg := all.Registry()
	var execs []*flowruntime.Execution
	var graphs []*flowruntime.Graph
	for _, p := range plan.Pipelines {
		env := operators.BuildEnv{
			Clock:  flowruntime.RealClock{},
			Logger: logger.Named(p.Name),
			Stdin:  os.Stdin,
			Stdout: stdout,
			Dir:    filepath.Dir(p.Range.Filename),
		}
		g, err := reg.BuildGraph(p, env)
		graphs = append(graphs, g)
		if err == nil {
			var exec *flowruntime.Execution
			exec, err = flowruntime.Start(ctx, g, flowruntime.Options{Logger: logger.Named(p.Name)})
			execs = append(execs, exec)
		}
		if err != nil {
			for _, e := range execs[:len(execs)-1] {
				e.Kill()
			}
			return err
		}
		logger.Info("pipeline started", "pipeline", p.Name, "stages", len(p.Stages), "bound_records", p.Bound.Records)
	}

	done := make(chan struct{})
	var errs []error
	go func() {
		defer close(done)
		for i, e := range execs {
			if err := e.Wait(); err != nil {
				errs = append(errs, err)
			}
			st := e.Stats()
			logCheckpoints(logger.Named(st.Pipeline), graphs[i])
			logger.Info("pipeline finished", "pipeline", st.Pipeline, "records_in", sourceRecords(st), "records_out", sinkRecords(st))
		}
	}()
	stopAll := func() {
		for _, e := range execs {
			e.Stop()
		}
	}
	stopping := false
	for {
		select {
		case <-done:
			return errors.Join(errs...)
		case <-ctx.Done():
			stopAll()
			ctx = context.Background()
		case sig := <-signals:
			if stopping {
				logger.Warn("second signal: stopping at once", "signal", sig.String())
				for _, e := range execs {
					e.Kill()
				}
				continue
			}
			stopping = true
			logger.Info("signal: stopping sources and draining", "signal", sig.String())
			stopAll()
		}
	}
}

// logCheckpoints logs where each source that keeps a checkpoint stopped:
// every record before it is finished.
func logCheckpoints(logger hclog.Logger, g *flowruntime.Graph) {
	for _, n := range g.Nodes {
		if cp, ok := n.Source.(flowruntime.Checkpointer); ok {
			logger.Info("source checkpoint", "stage", n.Name, "checkpoint", cp.Checkpoint())
		}
	}
}

// sourceRecords sums what the execution's sources emitted.
func sourceRecords(st flowruntime.Stats) int64 {
	var n int64
	for _, ns := range st.Nodes {
		if ns.In == 0 {
			n += ns.Out
		}
	}
	return n
}

// sinkRecords sums what the execution's sinks wrote.
func sinkRecords(st flowruntime.Stats) int64 {
	outputs := make(map[string]bool)
	for _, e := range st.Edges {
		outputs[e.From] = true
	}
	var n int64
	for _, ns := range st.Nodes {
		if !outputs[ns.Name] {
			n += ns.Out
		}
	}
	return n
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
