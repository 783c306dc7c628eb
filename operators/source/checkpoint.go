package source

import (
	"fmt"
	"sync"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Position is how far one input of a source is finished: every line before
// Offset has been written by every sink it reached, filtered out or
// dead-lettered. Reading again from Offset loses nothing.
type Position struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
}

// String renders the position as file@offset, for text logs.
func (p Position) String() string { return fmt.Sprintf("%s@%d", p.File, p.Offset) }

// positions holds the checkpoint of every input a source has opened.
type positions struct {
	mu     sync.Mutex
	inputs []*input
}

type input struct {
	file string
	done *flowruntime.Checkpoint
}

// track starts tracking an input opened at offset. An input opened again
// (a truncated or rotated file) replaces the earlier one of the same name.
func (p *positions) track(file string, offset int64) *flowruntime.Checkpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := flowruntime.NewCheckpoint(offset)
	for _, in := range p.inputs {
		if in.file == file {
			in.done = cp
			return cp
		}
	}
	p.inputs = append(p.inputs, &input{file: file, done: cp})
	return cp
}

// Checkpoint returns the finished position of every input, in the order they
// were opened.
func (p *positions) Checkpoint() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Position, len(p.inputs))
	for i, in := range p.inputs {
		out[i] = Position{File: in.file, Offset: in.done.Committed()}
	}
	return out
}
