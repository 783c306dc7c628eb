package sink

import (
	"context"
	"sync"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Memory is a sink that keeps every record it is given, for tests and the
// test command. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	recs   []flowruntime.Record
	closed bool
}

// Write keeps recs.
func (m *Memory) Write(_ context.Context, recs []flowruntime.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, recs...)
	return nil
}

// Close marks the sink closed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Records returns the records written so far, in order.
func (m *Memory) Records() []flowruntime.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]flowruntime.Record(nil), m.recs...)
}

// Fields returns the fields of the records written so far, in order.
func (m *Memory) Fields() []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]map[string]any, len(m.recs))
	for i, r := range m.recs {
		out[i] = r.Fields
	}
	return out
}

// Closed reports whether Close was called.
func (m *Memory) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}
