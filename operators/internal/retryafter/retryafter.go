package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Max bounds the wait a Retry-After may ask for, so that it cannot
// overflow; the runtime's policy caps it far lower.
const Max = 24 * time.Hour

// Parse reads the value h of a Retry-After header: whole seconds, or an
// HTTP-date, which is turned into the wait from now (0 when it has passed).
// The wait is at most Max. It reports false for an empty, negative or
// malformed value, which asks for nothing.
func Parse(h string, now time.Time) (time.Duration, bool) {
	if secs, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(Max/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), Max), true
}
