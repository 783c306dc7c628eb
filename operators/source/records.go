package source

import (
	"context"
	"github.com/flowrun/flowrun/operators"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Records is a source that emits given records, for tests and for the test
// command's input blocks. Each record is copied before it is emitted, so the
// given maps are never changed and Run may be called again.
type Records struct {
	stage  string
	fields []map[string]any
}

// NewRecords returns a source named stage that emits fields in order, with
// Meta.Position the index of each.
func NewRecords(stage string, fields []map[string]any) *Records {
	return &Records{stage: stage, fields: fields}
}

// Run emits the records in batches and returns.
func (r *Records) Run(ctx context.Context, out flowruntime.Emitter) error {
	for start := 0; start < len(r.fields); start += batchSize {
		end := min(start+batchSize, len(r.fields))
		batch := make([]flowruntime.Record, 0, end-start)
		for i := start; i < end; i++ {
			m, _ := operators.Clone(r.fields[i]).(map[string]any)
			batch = append(batch, flowruntime.Record{
				Fields: m,
				Meta:   flowruntime.Meta{Source: r.stage, Position: int64(i)},
			})
		}
		if err := out.Emit(ctx, batch, nil); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}
