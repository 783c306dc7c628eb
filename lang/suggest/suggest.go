// Package suggest finds the name someone probably meant when they wrote one
// that does not exist: the "did you mean" of diagnostics.
//
// It knows nothing of .flow files; it must not import other flowrun
// packages.
package suggest

import (
	"strings"

	"github.com/agnivade/levenshtein"
)

// Suggest returns the candidate closest to name by edit distance (case
// ignored), or "" when none is close enough to be a likely misspelling.
// Names of up to three characters allow one edit, longer names two, and
// never as many edits as the name is long; swapping two adjacent
// characters counts as one edit. Ties go to the earliest
// candidate.
func Suggest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	lower := strings.ToLower(name)
	limit := 2
	if len(name) <= 3 {
		limit = 1
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if c == name {
			continue
		}
		lc := strings.ToLower(c)
		d := levenshtein.ComputeDistance(lower, lc)
		if d == 2 && swapped(lower, lc) {
			d = 1
		}
		if d < bestDist && d < len(name) {
			best, bestDist = c, d
		}
	}
	return best
}

// swapped reports whether a and b differ only by two adjacent characters
// swapped, a typing slip that edit distance counts as two edits.
func swapped(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
}

// Hint renders a suggestion as a diagnostic hint, `Did you mean "x"?`, or
// returns "" when there is no suggestion.
func Hint(name string, candidates []string) string {
	s := Suggest(name, candidates)
	if s == "" {
		return ""
	}
	return `Did you mean "` + s + `"?`
}
