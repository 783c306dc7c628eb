package state

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"
	"unicode/utf8"
)

// Snapshot is one consistent checkpoint of every stage of a pipeline. The
// zero Snapshot is the empty state of a pipeline that has none yet.
type Snapshot struct {
	// Sequence numbers the pipeline's checkpoints; 0 only in the empty
	// snapshot.
	Sequence uint64
	// Time is when the checkpoint was taken.
	Time time.Time
	// Stages holds each stage's state by stage name, as the stage encoded
	// it. A stage with nothing to keep is absent; a nil blob is loaded
	// as an empty one.
	Stages map[string][]byte
}

// StageNames returns the names of the stages in s, sorted.
func (s Snapshot) StageNames() []string {
	names := make([]string, 0, len(s.Stages))
	for name := range s.Stages {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// FormatVersion is the version of the snapshot file format this package
// writes, and the only one it reads.
const FormatVersion = 1

// magic opens every snapshot file.
const magic = "flowrun state\n"

// headerSize is the length of magic, version, body length and checksum.
const headerSize = len(magic) + 2 + 4 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the error of a snapshot file that is truncated,
// damaged, of another pipeline, or not a snapshot file at all.
var ErrCorrupt = errors.New("corrupt")

// ErrVersion is wrapped by the error of a snapshot file written in a
// format version this build does not read.
var ErrVersion = errors.New("unsupported format version")

// FileError is the error of a snapshot file that cannot be used. Err
// wraps ErrCorrupt or ErrVersion and says what is wrong.
type FileError struct {
	// Path is the snapshot file.
	Path string
	Err  error
}

// Error names the file and what is wrong with it.
func (e *FileError) Error() string { return "state file " + e.Path + ": " + e.Err.Error() }

// Unwrap returns e.Err.
func (e *FileError) Unwrap() error { return e.Err }

// body is the JSON body of a snapshot file.
type body struct {
	Pipeline string           `json:"pipeline"`
	Sequence uint64           `json:"sequence"`
	Time     time.Time        `json:"time"`
	Stages   map[string]stage `json:"stages"`
}

// stage is one stage's blob: JSON embedded as it is, or base64.
type stage struct {
	JSON   json.RawMessage `json:"json,omitempty"`
	Base64 *string         `json:"base64,omitempty"`
}

// encode returns the snapshot file of s for pipeline.
func encode(pipeline string, s Snapshot) ([]byte, error) {
	if !utf8.ValidString(pipeline) {
		return nil, fmt.Errorf("pipeline name %q is not valid UTF-8", pipeline)
	}
	b := body{Pipeline: pipeline, Sequence: s.Sequence, Time: s.Time.UTC(), Stages: make(map[string]stage, len(s.Stages))}
	for name, blob := range s.Stages {
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("stage name %q is not valid UTF-8", name)
		}
		if isCompactJSON(blob) {
			b.Stages[name] = stage{JSON: blob}
		} else {
			enc := base64.StdEncoding.EncodeToString(blob)
			b.Stages[name] = stage{Base64: &enc}
		}
	}
	var buf bytes.Buffer
	buf.Grow(headerSize + 128)
	buf.WriteString(magic)
	buf.Write(make([]byte, headerSize-len(magic)))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	out := buf.Bytes()
	n := len(out) - headerSize
	if uint64(n) > 1<<32-1 {
		return nil, fmt.Errorf("snapshot of %d bytes is larger than the format's 4 GiB", n)
	}
	h := out[len(magic):headerSize]
	binary.BigEndian.PutUint16(h[0:], FormatVersion)
	binary.BigEndian.PutUint32(h[2:], uint32(n))
	binary.BigEndian.PutUint32(h[6:], crc32.Checksum(out[headerSize:], castagnoli))
	return out, nil
}

// isCompactJSON reports whether blob is valid JSON that compacting (without
// HTML escapes) leaves unchanged, so that embedding it keeps its bytes.
func isCompactJSON(blob []byte) bool {
	if len(blob) == 0 || !utf8.Valid(blob) || !json.Valid(blob) {
		return false
	}
	var c bytes.Buffer
	if json.Compact(&c, blob) != nil {
		return false
	}
	return bytes.Equal(c.Bytes(), blob)
}

// decode reads a snapshot file and returns the pipeline it belongs to and
// its snapshot. Its errors wrap ErrCorrupt or ErrVersion and say what is
// wrong, without naming the file.
func decode(data []byte) (string, Snapshot, error) {
	if len(data) == 0 {
		return "", Snapshot{}, fmt.Errorf("%w: the file is empty (truncated)", ErrCorrupt)
	}
	if len(data) < len(magic) {
		if bytes.HasPrefix([]byte(magic), data) {
			return "", Snapshot{}, fmt.Errorf("%w: truncated in its header (%d bytes, a header is %d)", ErrCorrupt, len(data), headerSize)
		}
		return "", Snapshot{}, fmt.Errorf("%w: not a flowrun state file (it does not start with %q)", ErrCorrupt, magic)
	}
	if string(data[:len(magic)]) != magic {
		return "", Snapshot{}, fmt.Errorf("%w: not a flowrun state file (it does not start with %q)", ErrCorrupt, magic)
	}
	if len(data) < headerSize {
		return "", Snapshot{}, fmt.Errorf("%w: truncated in its header (%d bytes, a header is %d)", ErrCorrupt, len(data), headerSize)
	}
	h := data[len(magic):headerSize]
	if v := binary.BigEndian.Uint16(h[0:]); v != FormatVersion {
		newer := ""
		if v > FormatVersion {
			newer = ": a newer flowrun wrote it"
		}
		return "", Snapshot{}, fmt.Errorf("%w %d (this flowrun reads version %d%s)", ErrVersion, v, FormatVersion, newer)
	}
	n := uint64(binary.BigEndian.Uint32(h[2:]))
	sum := binary.BigEndian.Uint32(h[6:])
	rest := uint64(len(data) - headerSize)
	switch {
	case rest < n:
		return "", Snapshot{}, fmt.Errorf("%w: truncated: the header announces %d bytes of body, the file holds %d", ErrCorrupt, n, rest)
	case rest > n:
		return "", Snapshot{}, fmt.Errorf("%w: %d bytes after the end of the body", ErrCorrupt, rest-n)
	}
	raw := data[headerSize:]
	if got := crc32.Checksum(raw, castagnoli); got != sum {
		return "", Snapshot{}, fmt.Errorf("%w: checksum mismatch (body %08x, header %08x): the file is damaged", ErrCorrupt, got, sum)
	}
	var b body
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return "", Snapshot{}, fmt.Errorf("%w: body: %v", ErrCorrupt, err)
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return "", Snapshot{}, fmt.Errorf("%w: body: data after the snapshot object", ErrCorrupt)
	}
	if b.Pipeline == "" {
		return "", Snapshot{}, fmt.Errorf("%w: body: no pipeline name", ErrCorrupt)
	}
	s := Snapshot{Sequence: b.Sequence, Time: b.Time}
	if len(b.Stages) > 0 {
		s.Stages = make(map[string][]byte, len(b.Stages))
	}
	for name, st := range b.Stages {
		switch {
		case st.JSON != nil && st.Base64 == nil:
			s.Stages[name] = slices.Clone([]byte(st.JSON))
		case st.JSON == nil && st.Base64 != nil:
			blob, err := base64.StdEncoding.DecodeString(*st.Base64)
			if err != nil {
				return "", Snapshot{}, fmt.Errorf("%w: body: stage %q: %v", ErrCorrupt, name, err)
			}
			s.Stages[name] = blob
		default:
			return "", Snapshot{}, fmt.Errorf("%w: body: stage %q holds neither json nor base64, or both", ErrCorrupt, name)
		}
	}
	return b.Pipeline, s, nil
}
