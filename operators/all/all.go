// Package all registers every stage kind flowrun ships. It is the one place
// that knows every family package; cmd and tests import it, operators
// packages never do.
package all

import (
	"fmt"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/call"
	"github.com/flowrun/flowrun/operators/kafka"
	"github.com/flowrun/flowrun/operators/nats"
	"github.com/flowrun/flowrun/operators/postgres"
	"github.com/flowrun/flowrun/operators/route"
	"github.com/flowrun/flowrun/operators/sink"
	"github.com/flowrun/flowrun/operators/source"
	"github.com/flowrun/flowrun/operators/transform"
	"github.com/flowrun/flowrun/operators/web"
)

var registry = func() *operators.Registry {
	var kinds []*operators.Kind
	kinds = append(kinds, source.Kinds()...)
	kinds = append(kinds, transform.Kinds()...)
	kinds = append(kinds, call.Kinds()...)
	kinds = append(kinds, route.Kinds()...)
	kinds = append(kinds, sink.Kinds()...)
	kinds = append(kinds, postgres.Kinds()...)
	kinds = append(kinds, web.Kinds()...)
	kinds = append(kinds, nats.Kinds()...)
	kinds = append(kinds, kafka.Kinds()...)
	r, err := operators.NewRegistry(kinds...)
	if err != nil {
		panic(fmt.Sprintf("operators/all: %v", err))
	}
	return r
}()

// Registry returns the registry of every kind. It implements
// planner.Registry and builds runtime graphs from plans.
func Registry() *operators.Registry { return registry }
