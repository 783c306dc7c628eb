package planner

import (
	"fmt"

	"github.com/agnivade/levenshtein"
)

// suggest returns the candidate closest to name by edit distance, or ""
// when none is close enough to be a likely misspelling.
func suggest(name string, candidates []string) string {
	best, bestDist := "", min(len(name)/2+1, 3)
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := levenshtein.ComputeDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean returns `Did you mean "x"?` for the closest candidate, or "".
func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf("Did you mean %q?", s)
	}
	return ""
}
