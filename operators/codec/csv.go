package codec

import "errors"

// ErrOpenQuote means a CSV row ended inside a quoted field: the row goes on
// in the next line.
var ErrOpenQuote = errors.New("quoted field not closed")

// SplitCSV appends the fields of one CSV row (RFC 4180: fields separated by
// sep, optionally quoted with "", a doubled quote inside quotes standing for
// one) to dst. The row may hold newlines inside quoted fields; when it ends
// inside quotes the result is ErrOpenQuote.
func SplitCSV(dst []string, row []byte, sep byte) ([]string, error) {
	var field []byte
	i := 0
	for {
		if i < len(row) && row[i] == '"' {
			field = field[:0]
			i++
			for {
				if i >= len(row) {
					return dst, ErrOpenQuote
				}
				c := row[i]
				if c == '"' {
					if i+1 < len(row) && row[i+1] == '"' {
						field = append(field, '"')
						i += 2
						continue
					}
					i++
					break
				}
				field = append(field, c)
				i++
			}
			// Text between the closing quote and the separator is kept.
			for i < len(row) && row[i] != sep {
				field = append(field, row[i])
				i++
			}
			dst = append(dst, string(field))
		} else {
			s := i
			for i < len(row) && row[i] != sep {
				i++
			}
			dst = append(dst, string(row[s:i]))
		}
		if i >= len(row) {
			return dst, nil
		}
		i++ // sep
	}
}
