package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// FuzzDecode feeds the snapshot decoder arbitrary files, and arbitrary
// bodies behind a valid header (so that the fuzzer reaches the JSON past
// the checksum). The decoder must never panic, must fail only with
// ErrCorrupt or ErrVersion, and what it accepts must encode and decode to
// the same snapshot again. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		checkDecode(t, framed(data))
	})
}

// framed puts body behind a valid version 1 header.
func framed(body []byte) []byte {
	b := []byte(magic)
	b = binary.BigEndian.AppendUint16(b, FormatVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	return append(b, body...)
}

func checkDecode(t *testing.T, data []byte) {
	name, s, err := decode(data)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
			t.Fatalf("decode error %v wraps neither ErrCorrupt nor ErrVersion", err)
		}
		return
	}
	out, err := encode(name, s)
	if err != nil {
		t.Fatalf("a decoded snapshot does not encode: %v", err)
	}
	name2, s2, err := decode(out)
	if err != nil {
		t.Fatalf("an encoded snapshot does not decode: %v\n%q", err, out)
	}
	if name2 != name || s2.Sequence != s.Sequence || !s2.Time.Equal(s.Time) || len(s2.Stages) != len(s.Stages) {
		t.Fatalf("re-encoded snapshot differs: %q %+v, then %q %+v", name, s, name2, s2)
	}
	for stage, blob := range s.Stages {
		if got, ok := s2.Stages[stage]; !ok || !bytes.Equal(got, blob) {
			t.Fatalf("stage %q: %q, then %q", stage, blob, got)
		}
	}
}
