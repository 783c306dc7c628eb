package overflow

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  Mode
		lossy bool
		err   bool
	}{
		{"block", Block, false, false},
		{"drop_oldest", DropOldest, true, false},
		{"drop_newest", DropNewest, true, false},
		{"drop_all", Block, false, true},
		{"", Block, false, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || got != tc.want || got.Lossy() != tc.lossy {
			t.Errorf("Parse(%q) = %v, %v (lossy %v); want %v, error %v, lossy %v", tc.in, got, err, got.Lossy(), tc.want, tc.err, tc.lossy)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	for _, name := range LossyNames() {
		if m, err := Parse(name); err != nil || !m.Lossy() {
			t.Errorf("LossyNames has %q, which parses to %v, %v", name, m, err)
		}
	}
}
