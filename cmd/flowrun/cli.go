package main

import (
	"context"
	"fmt"
	"io"
)

// Exit codes shared by every verb.
const (
	exitOK    = 0
	exitFail  = 1 // invalid input, failed test, failed run
	exitUsage = 2
)

// verb is one sub-command: it gets its own arguments and writers.
type verb struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func verbs() []verb {
	return []verb{
		{"run", "run the pipelines of FILE|DIR...", cmdRun},
		{"validate", "check FILE|DIR... and report every problem", cmdValidate},
		{"test", "run the test blocks of FILE|DIR...", cmdTest},
		{"fmt", "rewrite FILE|DIR... in the canonical layout", cmdFmt},
		{"graph", "print the planned DAG of FILE", cmdGraph},
		{"state", "show or reset the state kept in DIR by run --state-dir DIR", cmdState},
		{"top", "show a live dashboard of the run serving --admin ADDR", cmdTop},
		{"version", "print the version", cmdVersion},
	}
}

// run is the whole command line: it dispatches to a verb and returns the exit
// code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "flowrun", verbs(), usage, args, stdout, stderr)
}

// dispatch runs the verb of vs that args name, with the rest of args. No
// verb is a usage error; -h, --help and help print usage and exit 0; an
// unknown verb is a usage error that prog (the command so far) names.
func dispatch(ctx context.Context, prog string, vs []verb, usage func(io.Writer), args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, v := range vs {
		if v.name == args[0] {
			return v.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n", prog, args[0])
	usage(stderr)
	return exitUsage
}

// writeVerbs lists vs, one a line, with their summaries.
func writeVerbs(w io.Writer, vs []verb) {
	for _, v := range vs {
		fmt.Fprintf(w, "  %-9s %s\n", v.name, v.summary)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: flowrun <command> [flags] [FILE|DIR...]")
	fmt.Fprintln(w)
	writeVerbs(w, verbs())
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func cmdVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "flowrun %s\n", version)
	return exitOK
}
