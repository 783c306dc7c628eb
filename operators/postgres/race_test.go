//go:build race

package postgres_test

// raceEnabled is true when the tests run with the race detector, which
// makes the in-process runs several times slower.
const raceEnabled = true
