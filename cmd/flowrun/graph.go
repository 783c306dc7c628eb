package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/graph"
)

// cmdGraph is the "graph" verb: it plans FILE and prints its pipelines as a
// Graphviz dot or mermaid diagram, with each edge's capacity and the memory
// bound. It exits 1 when the file is not valid, 2 on a usage error.
func cmdGraph(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "dot", "output `format`: dot or mermaid")
	only := fs.String("pipeline", "", "draw only the pipeline `NAME`")
	vars := varFlags{}
	fs.Var(vars, "var", "set the variable NAME to VALUE (`NAME=VALUE`, repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun graph [--format dot|mermaid] [--pipeline NAME] [--var NAME=VALUE]... FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	var draw func(io.Writer, ...*planner.Pipeline) error
	switch *format {
	case "dot":
		draw = graph.Dot
	case "mermaid":
		draw = graph.Mermaid
	default:
		fmt.Fprintf(stderr, "flowrun graph: unknown format %q: want dot or mermaid\n", *format)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "flowrun graph: want exactly one FILE")
		fs.Usage()
		return exitUsage
	}
	l, err := load(fs.Args(), vars)
	if err != nil {
		fmt.Fprintf(stderr, "flowrun graph: %v\n", err)
		return exitFail
	}
	if err := diag.WriteText(stderr, l.diags, l.sources); err != nil {
		fmt.Fprintf(stderr, "flowrun graph: %v\n", err)
		return exitFail
	}
	if l.diags.HasErrors() {
		return exitFail
	}
	pipelines := l.plan.Pipelines
	if *only != "" {
		pipelines = nil
		for _, p := range l.plan.Pipelines {
			if p.Name == *only {
				pipelines = append(pipelines, p)
			}
		}
		if len(pipelines) == 0 {
			fmt.Fprintf(stderr, "flowrun graph: no pipeline named %q\n", *only)
			return exitFail
		}
	}
	if len(pipelines) == 0 {
		fmt.Fprintf(stderr, "flowrun graph: %s has no pipeline\n", fs.Arg(0))
		return exitFail
	}
	if err := draw(stdout, pipelines...); err != nil {
		fmt.Fprintf(stderr, "flowrun graph: %v\n", err)
		return exitFail
	}
	return exitOK
}
