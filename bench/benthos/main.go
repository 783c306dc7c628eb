// Command benthos is Benthos v4 with its pure and io components only: the
// contender bench/run measures flowrun against.
package main

import (
	"context"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func main() {
	service.RunCLI(context.Background())
}
