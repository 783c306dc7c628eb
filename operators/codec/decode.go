package codec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoder decodes JSON objects into records. It remembers the object keys
// and short strings it has seen (up to a bound) so that repeated ones cost no
// allocation. It is
// not safe for concurrent use; the zero value is ready to use.
type Decoder struct {
	keys map[string]string
	// vals holds short string values already boxed in an interface, so a
	// repeated value costs neither the string nor the box.
	vals map[string]any
	// width is the key count of the last top-level object, to size the next.
	width int
	data  []byte
	pos   int
}

// maxKeys bounds the key cache and the short value cache.
const maxKeys = 4096

// SyntaxError is malformed JSON at byte Offset of the decoded text.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// DecodeObject decodes data, which must hold one JSON object and nothing else
// but white space. Integers that fit int64 decode to int64, other numbers to
// float64; strings are copied, never aliased to data.
func (d *Decoder) DecodeObject(data []byte) (map[string]any, error) {
	d.data, d.pos = data, 0
	defer func() { d.data = nil }()
	d.skipSpace()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return nil, d.errorf("a record must be a JSON object")
	}
	m, err := d.object(d.width)
	if err != nil {
		return nil, err
	}
	d.width = len(m)
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.errorf("unexpected text after the object")
	}
	return m, nil
}

// Decode decodes data holding one JSON value of any kind.
func (d *Decoder) Decode(data []byte) (any, error) {
	d.data, d.pos = data, 0
	defer func() { d.data = nil }()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.errorf("unexpected text after the value")
	}
	return v, nil
}

func (d *Decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

func (d *Decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *Decoder) value() (any, error) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(0)
	case c == '[':
		return d.array()
	case c == '"':
		b, err := d.str()
		if err != nil {
			return nil, err
		}
		if len(b) <= maxInterned {
			return d.value16(b), nil
		}
		return string(b), nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	default:
		return nil, d.errorf("unexpected character %q", c)
	}
}

func (d *Decoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.errorf("invalid literal")
	}
	d.pos += len(word)
	return nil
}

func (d *Decoder) object(width int) (map[string]any, error) {
	d.pos++ // {
	m := make(map[string]any, width)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.errorf("expected a quoted key")
		}
		kb, err := d.str()
		if err != nil {
			return nil, err
		}
		key := d.key(kb)
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.errorf("expected ':' after key %q", key)
		}
		d.pos++
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[key] = v
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of input in an object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return m, nil
		default:
			return nil, d.errorf("expected ',' or '}' in an object")
		}
	}
}

// maxInterned is the longest string value shared between records: short
// values such as levels and hosts repeat.
const maxInterned = 16

// value16 returns the short string b as a value, shared with earlier equal
// ones while the cache has room.
func (d *Decoder) value16(b []byte) any {
	if v, ok := d.vals[string(b)]; ok {
		return v
	}
	var v any = string(b)
	if d.vals == nil {
		d.vals = make(map[string]any)
	}
	if len(d.vals) < maxKeys {
		d.vals[v.(string)] = v
	}
	return v
}

// key returns b as a string, shared with earlier equal keys while the cache
// has room.
func (d *Decoder) key(b []byte) string {
	if k, ok := d.keys[string(b)]; ok {
		return k
	}
	k := string(b)
	if d.keys == nil {
		d.keys = make(map[string]string)
	}
	if len(d.keys) < maxKeys {
		d.keys[k] = k
	}
	return k
}

func (d *Decoder) array() ([]any, error) {
	d.pos++ // [
	out := make([]any, 0, 4)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return out, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of input in a list")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return out, nil
		default:
			return nil, d.errorf("expected ',' or ']' in a list")
		}
	}
}

// str reads a quoted string and returns its unescaped bytes. The bytes alias
// data when the string has no escapes; callers copy them.
func (d *Decoder) str() ([]byte, error) {
	d.pos++ // "
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := d.data[start:d.pos]
			d.pos++
			return s, nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && n == 1 {
				return d.escaped(start)
			}
			d.pos += n
		default:
			d.pos++
		}
	}
	return nil, d.errorf("unterminated string")
}

// escaped finishes a string that needs unescaping or UTF-8 repair.
func (d *Decoder) escaped(start int) ([]byte, error) {
	out := make([]byte, 0, d.pos-start+16)
	out = append(out, d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return out, nil
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		case c == '\\':
			if d.pos+1 >= len(d.data) {
				return nil, d.errorf("unterminated escape")
			}
			e := d.data[d.pos+1]
			d.pos += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return nil, d.errorf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(utf8.RuneError)
					if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
						save := d.pos
						d.pos += 2
						if lo, ok := d.hex4(); ok {
							r2 = utf16.DecodeRune(r, lo)
						}
						if r2 == utf8.RuneError {
							d.pos = save
						}
					}
					r = r2
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, d.errorf("invalid escape \\%c", e)
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, d.data[d.pos:d.pos+n]...)
			}
			d.pos += n
		default:
			out = append(out, c)
			d.pos++
		}
	}
	return nil, d.errorf("unterminated string")
}

func (d *Decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.pos += 4
	return r, true
}

var errRange = errors.New("number out of range")

func (d *Decoder) number() (any, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	intStart := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	if d.pos == intStart {
		return nil, d.errorf("invalid number")
	}
	if d.data[intStart] == '0' && d.pos-intStart > 1 {
		return nil, d.errorf("invalid number: leading zero")
	}
	isFloat := false
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		isFloat = true
		d.pos++
		fs := d.pos
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
		}
		if d.pos == fs {
			return nil, d.errorf("invalid number: no digits after '.'")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		isFloat = true
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		es := d.pos
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
		}
		if d.pos == es {
			return nil, d.errorf("invalid number: no digits in the exponent")
		}
	}
	text := d.data[start:d.pos]
	if !isFloat {
		if n, ok := parseInt(text); ok {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, &SyntaxError{Offset: start, Msg: errRange.Error()}
	}
	return f, nil
}

// parseInt parses an optionally negative decimal integer without
// allocating; ok is false when it does not fit int64.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) > 19 { // 19 digits always fit uint64
		return 0, false
	}
	var u uint64
	for _, c := range b {
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > math.MaxInt64+1 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
