// Package codec turns bytes into record fields and back on the hot path: a
// JSON decoder that keeps integers as int64 and copies every string (a
// decoded record never aliases the input buffer, so buffers are reused), a
// JSON encoder with sorted keys (deterministic output), a line reader that
// tracks byte offsets and bounds line length, and a CSV row splitter. It
// imports only the standard library and goccy/go-json.
package codec
