package main

import (
	"context"
	"fmt"
	"io"
)

// cmdRun is the "run" verb. Placeholder until implemented.
func cmdRun(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "flowrun run: not implemented yet")
	return exitFail
}
