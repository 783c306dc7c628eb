// Command flowrun parses, checks, formats, plans and runs .flow pipelines.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
