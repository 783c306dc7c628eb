package state

import (
	"fmt"
	"strings"
)

// lockName is the lock file in a state directory.
const lockName = "LOCK"

// escapeName returns the directory name of pipeline name: every byte other
// than an ASCII letter, digit, '_' or '-' as %XX, and the first letter of
// a name that is LOCK in any case escaped too. name is not empty.
func escapeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plain(c) && !(i == 0 && strings.EqualFold(name, lockName)) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// unescapeName returns the pipeline name of a directory name, and false
// when dir is not a name escapeName returns (a directory flowrun did not
// make, or the lock file).
func unescapeName(dir string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(dir); i++ {
		c := dir[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(dir) || !upperHex(dir[i+1]) || !upperHex(dir[i+2]) {
			return "", false
		}
		b.WriteByte(unhex(dir[i+1])<<4 | unhex(dir[i+2]))
		i += 2
	}
	name := b.String()
	if name == "" || escapeName(name) != dir {
		return "", false
	}
	return name, true
}

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func upperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}
