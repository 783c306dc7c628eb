package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/flowrun/flowrun/lang/diag"
)

// cmdValidate is the "validate" verb: it parses and plans FILE|DIR... and
// reports every problem. It exits 0 when everything is valid (warnings
// allowed), 1 when there is an error, 2 on a usage error.
func cmdValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "output `format`: text, json or github")
	vars := varFlags{}
	fs.Var(vars, "var", "set the variable NAME to VALUE (`NAME=VALUE`, repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun validate [--format text|json|github] [--var NAME=VALUE]... FILE|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch *format {
	case "text", "json", "github":
	default:
		fmt.Fprintf(stderr, "flowrun validate: unknown format %q: want text, json or github\n", *format)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "flowrun validate: no FILE or DIR given")
		fs.Usage()
		return exitUsage
	}
	l, err := load(fs.Args(), vars)
	if err != nil {
		fmt.Fprintf(stderr, "flowrun validate: %v\n", err)
		return exitFail
	}

	switch *format {
	case "json":
		reports := diag.Reports(l.files, l.diags)
		var v any = reports
		if len(reports) == 1 {
			v = reports[0]
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "flowrun validate: %v\n", err)
			return exitFail
		}
	case "github":
		if err := diag.WriteGitHub(stdout, l.diags); err != nil {
			fmt.Fprintf(stderr, "flowrun validate: %v\n", err)
			return exitFail
		}
	default:
		if err := diag.WriteText(stderr, l.diags, l.sources); err != nil {
			fmt.Fprintf(stderr, "flowrun validate: %v\n", err)
			return exitFail
		}
		if !l.diags.HasErrors() {
			fmt.Fprintf(stdout, "valid: %s, %s, %s\n",
				plural(len(l.files), "file"), plural(len(l.plan.Pipelines), "pipeline"), plural(len(l.plan.Tests), "test"))
		}
	}
	if l.diags.HasErrors() {
		return exitFail
	}
	return exitOK
}

// plural renders n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
