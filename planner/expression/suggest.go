package expression

import "github.com/agnivade/levenshtein"

// suggestName returns the candidate closest to name by edit distance, or ""
// when none is close enough to be a likely misspelling.
func suggestName(name string, candidates []string) string {
	best, bestDist := "", len(name)/2+1
	if bestDist > 3 {
		bestDist = 3
	}
	for _, c := range candidates {
		if d := levenshtein.ComputeDistance(name, c); d < bestDist || (d == bestDist && best == "" && d <= 2) {
			best, bestDist = c, d
		}
	}
	return best
}
