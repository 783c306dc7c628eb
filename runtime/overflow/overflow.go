// Package overflow names what an edge does when a record arrives and it is
// full: by default the producer waits for credit (lossless); a lossy branch
// of a broadcast fanout drops records instead, so that a slow branch never
// holds the others back.
package overflow

import "fmt"

// Mode is an edge's behaviour when it is full.
type Mode uint8

// The modes, in the order of their names.
const (
	// Block makes the producer wait for credit: nothing is lost.
	Block Mode = iota
	// DropOldest evicts the oldest queued records to make room.
	DropOldest
	// DropNewest drops the arriving records that do not fit.
	DropNewest
)

var names = [...]string{Block: "block", DropOldest: "drop_oldest", DropNewest: "drop_newest"}

// String returns the mode's name as written in a .flow file.
func (m Mode) String() string {
	if int(m) < len(names) {
		return names[m]
	}
	return fmt.Sprintf("overflow.Mode(%d)", uint8(m))
}

// Lossy reports whether the mode drops records.
func (m Mode) Lossy() bool { return m == DropOldest || m == DropNewest }

// LossyNames lists the names a when_full option accepts.
func LossyNames() []string { return []string{DropOldest.String(), DropNewest.String()} }

// Parse returns the mode named s.
func Parse(s string) (Mode, error) {
	for m, name := range names {
		if name == s {
			return Mode(m), nil
		}
	}
	return Block, fmt.Errorf("unknown when_full %q (want drop_oldest or drop_newest)", s)
}
