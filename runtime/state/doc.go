// Package state is the on-disk store of a state directory (flowrun run
// --state-dir DIR): where each pipeline keeps its latest checkpoint, so a
// restarted pipeline resumes where it stopped.
//
// # State directory layout
//
//	DIR/
//	  LOCK                   held (flock) by the one process using DIR; holds its pid
//	  PIPELINE/              one directory per pipeline, its name escaped
//	    snapshot             the pipeline's latest checkpoint
//	    snapshot.tmp-NNNN    a snapshot being written (left behind only by a crash)
//
// One process at a time uses a state directory: Open takes an exclusive,
// non-blocking flock on DIR/LOCK and writes its pid there, so a second
// process (or a second Open in the same process) fails with an error that
// names the directory and the pid holding it. The kernel releases the lock
// when the holder exits, however it exits, so a stale LOCK file left by
// kill -9 never blocks a restart. flock needs a local file system (not
// every network file system honours it).
//
// A pipeline's directory name is its name with every byte other than an
// ASCII letter, digit, '_' or '-' written as %XX (upper-case hex), so any
// pipeline name is one safe path component: "error_alerts" stays as it
// is, "logs.v2" is "logs%2Ev2", "a/b" is "a%2Fb". The name LOCK (in any
// case) has its first letter escaped, as "%4COCK", so it cannot meet the
// lock file. Directories and files are created readable by their owner
// only (0700, 0600), since a checkpoint may hold values of records (keys,
// dedupe and reduce state).
//
// # The snapshot file
//
// A snapshot is one consistent checkpoint of every stage of a pipeline: a
// sequence number, the time it was taken, and per stage an opaque blob the
// stage encoded itself. The file is a 24-byte header followed by a body:
//
//	offset  size  field
//	0       14    magic "flowrun state\n" (so `head -1 snapshot` names it)
//	14      2     format version, big-endian uint16 (now 1)
//	16      4     body length in bytes, big-endian uint32
//	20      4     CRC-32 (Castagnoli) of the body, big-endian uint32
//	24      ...   body: exactly that many bytes, nothing after it
//
// The body is JSON: a snapshot is mostly positions, keys and counters,
// written about once a second, so a binary encoding would save little,
// while JSON can be read with standard tools
// (`tail -c +25 snapshot | jq`), diffed, and printed by `flowrun state
// show` as it is. The checksum, not the encoding, guards the content:
// a body is parsed only once it matches. For example:
//
//	{"pipeline":"error_alerts","sequence":42,"time":"2025-01-02T03:04:05.123456789Z",
//	 "stages":{"logs":{"json":{"offset":1234}},"seen":{"base64":"AAEC"}}}
//
// A stage's blob is stored as "json" (embedded as it is) when it is
// compact JSON, which is what most stages write, and as "base64"
// otherwise; either way Load gives back exactly the bytes saved.
//
// Writing is atomic: Save writes snapshot.tmp-NNNN in the pipeline's
// directory, fsyncs it, renames it over snapshot and fsyncs the directory,
// so a reader (or a restart after kill -9) sees the old snapshot or the new
// one, never a mix. Load removes temporary files a crash left behind.
//
// A snapshot file that is truncated, damaged (its checksum does not
// match), not a snapshot at all, of another pipeline, or of a format
// version this build does not read is an error naming the file and what is
// wrong (a *FileError), never an empty state. Save then refuses to
// overwrite it, so nothing is lost by accident; Reset removes a
// pipeline's state, after which the pipeline starts afresh.
//
// List reads every pipeline's snapshot without taking the lock, so it
// works while a process runs the pipelines: as writes are renames, it sees
// each snapshot whole.
//
// The package imports only the standard library and golang.org/x/sys/unix;
// it never imports lang, planner, operators or runtime (the runtime may
// import it).
package state
