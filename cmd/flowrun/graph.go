package main

import (
	"context"
	"fmt"
	"io"
)

// cmdGraph is the "graph" verb. Placeholder until implemented.
func cmdGraph(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "flowrun graph: not implemented yet")
	return exitFail
}
