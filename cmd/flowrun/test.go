package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/flowtest"
)

// cmdTest is `flowrun test`: it runs every test block found, on a virtual
// clock, and prints a diff for each failure. It exits 1 when any test fails.
func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vars := varFlags{}
	fs.Var(vars, "var", "set a variable: `name=value` (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun test [--var k=v] FILE|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	plan, sources, diags, err := loadPlan(fs.Args(), vars)
	if err != nil {
		fmt.Fprintf(stderr, "flowrun test: %v\n", err)
		return exitFail
	}
	if diags.HasErrors() {
		_ = diag.WriteText(stderr, diags, sources)
		return exitFail
	}
	runner := &flowtest.Runner{Registry: all.Registry()}
	failed := 0
	for _, t := range plan.Tests {
		res := runner.Run(ctx, plan, t)
		if res.Passed() {
			fmt.Fprintf(stdout, "PASS %s\n", t.Name)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s (%s)\n", t.Name, t.Range)
		if res.Err != nil {
			fmt.Fprintf(stdout, "  %v\n", res.Err)
		}
		for _, m := range res.Mismatches {
			fmt.Fprintf(stdout, "  sink %q received other records than expected:\n%s", m.Sink, m.Diff)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(plan.Tests)-failed, failed)
	if failed > 0 {
		return exitFail
	}
	return exitOK
}
