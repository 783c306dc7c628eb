package runtime

import "context"

// Opener is implemented by sinks that must be ready before their first
// Write, such as servers that clients connect to before records flow (a
// websocket or server-sent events endpoint). The runtime calls Open once,
// when the execution starts and before any Write; an error fails the
// execution. Close is called afterwards either way.
type Opener interface {
	Open(ctx context.Context) error
}
