package suggest_test

import (
	"testing"

	"github.com/flowrun/flowrun/lang/suggest"
)

func TestSuggest(t *testing.T) {
	kinds := []string{"source", "sink", "filter", "map", "throttle", "fanout", "merge", "batch", "take", "skip"}
	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"uper", []string{"lower", "upper", "trim"}, "upper"},
		{"filtr", kinds, "filter"},
		{"Filter", kinds, "filter"},
		{"thrtotle", kinds, "throttle"},
		{"mpa", kinds, "map"},
		{"snik", kinds, "sink"},
		{"xyz", kinds, ""},
		{"window", kinds, ""},
		{"a", []string{"b", "ab"}, ""},
		{"", kinds, ""},
		{"skip", kinds, ""},
		{"tke", []string{"take", "tee"}, "take"},
		{"rat", []string{"rate", "rats"}, "rate"},
	}
	for _, tt := range tests {
		if got := suggest.Suggest(tt.name, tt.candidates); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestHint(t *testing.T) {
	if got, want := suggest.Hint("uper", []string{"upper"}), `Did you mean "upper"?`; got != want {
		t.Errorf("Hint = %q, want %q", got, want)
	}
	if got := suggest.Hint("zzz", []string{"upper"}); got != "" {
		t.Errorf("Hint with no close candidate = %q, want empty", got)
	}
}
