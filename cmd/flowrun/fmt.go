package main

import (
	"context"
	"fmt"
	"io"
)

// cmdFmt is the "fmt" verb. Placeholder until implemented.
func cmdFmt(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "flowrun fmt: not implemented yet")
	return exitFail
}
