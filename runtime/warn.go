package runtime

import "time"

// Warnings about single records (skipped, dead-lettered, dropped on a lossy
// edge) could flood the log when many records fail, so each kind is limited
// by a rate.Sometimes of its own: the first warnFirst are logged, then at
// most one per warnInterval, carrying the running total so that nothing is
// hidden.
const (
	warnFirst    = 10
	warnInterval = 10 * time.Second
)
