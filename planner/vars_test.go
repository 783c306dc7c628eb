package planner

import (
	"fmt"
	"testing"
)

func TestConvertVar(t *testing.T) {
	tests := []struct {
		raw        string
		def        any
		hasDefault bool
		want       any
		wantErr    string
	}{
		{raw: "10", def: int64(1), hasDefault: true, want: int64(10)},
		{raw: "ten", def: int64(1), hasDefault: true, wantErr: `the default is an integer and "ten" is not one`},
		{raw: "2.5", def: int64(1), hasDefault: true, wantErr: "is not one"},
		{raw: "2.5", def: 1.0, hasDefault: true, want: 2.5},
		{raw: "3", def: 1.0, hasDefault: true, want: 3.0},
		{raw: "true", def: false, hasDefault: true, want: true},
		{raw: "yes", def: false, hasDefault: true, wantErr: "not true or false"},
		{raw: "42", def: "x", hasDefault: true, want: "42"},
		{raw: `"quoted"`, def: "x", hasDefault: true, want: `"quoted"`},
		{raw: "42", want: int64(42)},
		{raw: "4.5", want: 4.5},
		{raw: `"quoted"`, want: "quoted"},
		{raw: "[1, 2]", want: []any{int64(1), int64(2)}},
		{raw: "example.com", want: "example.com"},
		{raw: "hello world", want: "hello world"},
		{raw: "[1, 2]", def: []any{}, hasDefault: true, want: []any{int64(1), int64(2)}},
		{raw: "3", def: []any{}, hasDefault: true, wantErr: "the default is a list"},
		{raw: "{a = 1}", def: map[string]any{}, hasDefault: true, want: map[string]any{"a": int64(1)}},
	}
	for _, tt := range tests {
		got, err := convertVar(tt.raw, tt.def, tt.hasDefault)
		if tt.wantErr != "" {
			if err == nil || !contains(err.Error(), tt.wantErr) {
				t.Errorf("convertVar(%q, %#v) error = %v, want %q", tt.raw, tt.def, err, tt.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
			t.Errorf("convertVar(%q, %#v) = %#v, %v; want %#v", tt.raw, tt.def, got, err, tt.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
