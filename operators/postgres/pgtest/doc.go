// Package pgtest starts a private PostgreSQL server for tests, from the
// system's binaries (initdb and postgres under /usr/lib/postgresql/*/bin),
// in a temporary directory, listening on a free 127.0.0.1 port with trust
// authentication and fsync off. The server is stopped and its directory
// removed when the test ends; Restart stops it and starts it again on the
// same port and data directory, for fault tests.
//
// When the binaries are missing a test is skipped with a message saying
// so, except when the CI environment variable is set: then it fails.
//
// initdb takes seconds, so the first server of a binary directory keeps a
// pristine cluster in os.TempDir()/flowrun-pgtest-cache (about 40 MB,
// made once and renamed into place) that later servers, in this process
// or the next, copy instead.
//
// initdb and postgres refuse to run as root; when the test runs as root
// they run as the "postgres" system user (or "nobody" when there is none),
// which owns the temporary directory.
//
// It imports pgx (to wait until the server accepts connections) and the
// standard library; nothing of flowrun.
package pgtest
