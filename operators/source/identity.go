package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"syscall"
)

// fingerprintSize is how many first bytes of a file its fingerprint covers
// at most: a position's fingerprint covers min(fingerprintSize, Offset)
// bytes, all read before, so the bytes it covers are there whenever the
// file is the one read.
const fingerprintSize = 1024

// fileID identifies a file on its machine: its device and inode numbers,
// which a rename keeps and a new file (a rotation's) does not. Zero means
// not known.
type fileID struct{ dev, ino uint64 }

// known reports whether id identifies a file.
func (id fileID) known() bool { return id.ino != 0 }

// idOf returns the identity of the file info describes.
func idOf(info os.FileInfo) fileID {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)} // Dev is not a uint64 on every platform
}

// readHead returns the first bytes of fh, up to fingerprintSize, without
// moving its offset.
func readHead(fh *os.File) ([]byte, error) {
	buf := make([]byte, fingerprintSize)
	n, err := fh.ReadAt(buf, 0)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:n], err
}

// fingerprint returns the fingerprint of a file's first bytes b: the first
// 8 bytes of their SHA-256, as 16 hex digits. With the device and inode it
// tells a file from a new one that reused its inode, and without them (an
// inode a copy or a restore changed) it tells a file from another at its
// path.
func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
