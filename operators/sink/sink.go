package sink

import (
	"fmt"
	"slices"
	"strconv"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
)

// Kinds returns every sink kind of this package.
func Kinds() []*operators.Kind { return []*operators.Kind{stdoutKind, fileKind, discardKind} }

// lineEncoder encodes one record as one line in a sink's codec.
type lineEncoder struct {
	codec string
	// field is the field written by the lines codec.
	field string
	// columns are the csv columns; header says whether the header row is
	// still to be written.
	columns []string
	header  bool
	enc     codec.Encoder
}

// appendLine appends rec's line, newline included; on error dst is
// returned as it was.
func (l *lineEncoder) appendLine(dst []byte, fields map[string]any) ([]byte, error) {
	start := len(dst)
	var err error
	switch l.codec {
	case "lines":
		dst, err = l.enc.AppendField(dst, fields, l.field)
	case "csv":
		if l.columns == nil {
			l.columns = make([]string, 0, len(fields))
			for k := range fields {
				l.columns = append(l.columns, k)
			}
			slices.Sort(l.columns)
		}
		if l.header {
			for i, c := range l.columns {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendCSV(dst, c)
			}
			dst = append(dst, '\n')
			l.header = false
		}
		for i, c := range l.columns {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = l.appendCell(dst, fields[c]); err != nil {
				break
			}
		}
	default:
		dst, err = l.enc.AppendObject(dst, fields)
	}
	if err != nil {
		return dst[:start], err
	}
	return append(dst, '\n'), nil
}

// appendLines appends the lines of recs to dst. A record it cannot encode
// (a NaN or infinite number, ...) is left out and named in the Failures it
// returns, so the others are still written.
func (l *lineEncoder) appendLines(dst []byte, recs []flowruntime.Record) ([]byte, *onerror.Failures) {
	var failed onerror.Failures
	for i := range recs {
		header := l.header
		line, err := l.appendLine(dst, recs[i].Fields)
		if err != nil {
			l.header = header // the header went with the line
			failed.Fail(i, onerror.Permanent(fmt.Errorf("encode: %w", err)))
			continue
		}
		dst = line
	}
	return dst, &failed
}

func (l *lineEncoder) appendCell(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return dst, nil
	case string:
		return appendCSV(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	}
	start := len(dst)
	out, err := l.enc.Append(dst, v)
	if err != nil {
		return dst, fmt.Errorf("csv cell: %w", err)
	}
	cell := string(out[start:])
	return appendCSV(out[:start], cell), nil
}

// appendCSV appends s as a CSV cell, quoted when it must be.
func appendCSV(dst []byte, s string) []byte {
	quote := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			quote = true
			break
		}
	}
	if len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		quote = true
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}
