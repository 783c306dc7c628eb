package codec

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// Encoder appends records as JSON with object keys sorted, so equal records
// always encode to equal bytes. It reuses its scratch space: not safe for
// concurrent use; the zero value is ready to use.
type Encoder struct {
	// TypedFloats writes a whole float64 with a fraction (2.0, not 2), so
	// that the Decoder reads it back as a float64 and not as an int64: for
	// saved state, where the type of a value must survive.
	TypedFloats bool
	keys        []string
}

// AppendObject appends the JSON of fields to dst.
func (e *Encoder) AppendObject(dst []byte, fields map[string]any) ([]byte, error) {
	return e.appendMap(dst, fields)
}

// AppendField appends fields[field] as a lines codec writes it: a string
// as its bytes, any other value as JSON; a record without the field is
// appended whole, as a JSON object.
func (e *Encoder) AppendField(dst []byte, fields map[string]any, field string) ([]byte, error) {
	v, ok := fields[field]
	if !ok {
		return e.appendMap(dst, fields)
	}
	if s, ok := v.(string); ok {
		return append(dst, s...), nil
	}
	return e.Append(dst, v)
}

// Append appends the JSON of v: nil, bool, any integer or float type,
// string, []any, map[string]any; other values are encoded by goccy/go-json.
// NaN and infinities are errors.
func (e *Encoder) Append(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return AppendString(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case float64:
		return e.appendFloat(dst, x)
	case map[string]any:
		return e.appendMap(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, el := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = e.Append(dst, el); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case float32:
		return e.appendFloat(dst, float64(x))
	}
	b, err := gojson.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("encode %T as JSON: %w", v, err)
	}
	return append(dst, b...), nil
}

func (e *Encoder) appendMap(dst []byte, m map[string]any) ([]byte, error) {
	base := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	keys := e.keys[base:]
	slices.Sort(keys)
	dst = append(dst, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		if dst, err = e.Append(dst, m[k]); err != nil {
			break
		}
	}
	clear(e.keys[base:])
	e.keys = e.keys[:base]
	if err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// appendFloat formats like encoding/json: the shortest representation,
// with an exponent only for very large or small magnitudes (and, with
// TypedFloats, ".0" after a whole number).
func (e *Encoder) appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("encode %v as JSON: not a JSON number", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if e.TypedFloats && format == 'f' && !slices.Contains(dst[start:], '.') {
		dst = append(dst, ".0"...)
	}
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// HTML characters are not escaped.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
