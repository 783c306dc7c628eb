package main

import (
	"context"
	"fmt"
	"io"
)

// cmdTest is the "test" verb. Placeholder until implemented.
func cmdTest(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "flowrun test: not implemented yet")
	return exitFail
}
