package main

import (
	"context"
	"fmt"
	"io"
)

// cmdValidate is the "validate" verb. Placeholder until implemented.
func cmdValidate(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "flowrun validate: not implemented yet")
	return exitFail
}
