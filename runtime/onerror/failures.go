package onerror

import (
	"fmt"
	"strings"
)

// Failures is the error a sink's Write returns when it wrote the batch but
// for some records: those it could not encode, or that its destination
// rejected one by one. The records not listed were written. Each listed
// error follows the stage's policy for its own record.
type Failures struct {
	// Errs maps an index into the batch to that record's error.
	Errs map[int]error
}

// Fail records err for the record at index i.
func (f *Failures) Fail(i int, err error) {
	if f.Errs == nil {
		f.Errs = make(map[int]error)
	}
	f.Errs[i] = err
}

// Err returns f as an error, or nil when no record failed.
func (f *Failures) Err() error {
	if f == nil || len(f.Errs) == 0 {
		return nil
	}
	return f
}

// Error names how many records failed and the first one's error.
func (f *Failures) Error() string {
	first := -1
	for i := range f.Errs {
		if first < 0 || i < first {
			first = i
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d record(s) failed", len(f.Errs))
	if first >= 0 {
		fmt.Fprintf(&b, "; record %d: %v", first, f.Errs[first])
	}
	return b.String()
}
