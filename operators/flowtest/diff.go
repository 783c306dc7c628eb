package flowtest

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Diff compares expected records with received ones, in order, and explains
// every difference on its own line; it returns "" when they are equal.
// Numbers compare by value, so an expected 3 equals a received 3.0.
func Diff(want, got []map[string]any) string {
	var b strings.Builder
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "  record %d: missing, want %s\n", i, render(want[i]))
		case i >= len(want):
			fmt.Fprintf(&b, "  record %d: unexpected %s\n", i, render(got[i]))
		case !equal(want[i], got[i]):
			fmt.Fprintf(&b, "  record %d:\n    - want %s\n    + got  %s\n", i, render(want[i]), render(got[i]))
		}
	}
	return b.String()
}

// equal compares two JSON-like values; integers and floats of the same value
// are equal.
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && (fa == fb || math.IsNaN(fa) && math.IsNaN(fb))
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// render prints a record as compact JSON with sorted keys.
func render(v map[string]any) string {
	out, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(out)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
