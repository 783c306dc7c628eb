// Package postgres holds the postgres source and sink.
//
// The source pages through a query with keyset pagination: it runs
//
//	SELECT * FROM (query) AS q WHERE q.key > $1 ORDER BY q.key LIMIT batch_size
//
// (never OFFSET), fetching the next page only once the pipeline took the
// previous one (Emit returned: the edge had credit for it), so at most one
// page is held outside the pipeline's edges. With follow it keeps polling
// for rows past the last key. Its checkpoint is the last key of the newest
// page acknowledged by the runtime together with every page before it
// (runtime.Checkpointer); a later run resumes after it (runtime.Resumer),
// so a hot reload neither loses nor repeats a finished row.
//
// The sink writes each batch in one transaction, with COPY FROM or, for
// upserts (upsert_key), a multi-row INSERT ... ON CONFLICT DO UPDATE. A
// failed batch is rolled back and its error returned, so the stage's
// on_error policy (retry by default) applies; a broken connection is dialled
// again by the next Write. Errors no retry can cure (a value that does not
// fit its column, a constraint violation, a missing table or column) are
// marked permanent: the batch is dead-lettered or the run fails at once.
// With a state dir the sink also sets, in each batch's transaction, its
// count of records written in a progress table of its own
// (flowrun_sink_progress); restored from a snapshot it skips the records
// the killed run wrote after it as they come again (progress.go), when the
// plan in front of it replays them in the same order (order.go).
// Record values are written as pgx encodes them, except for strings in
// timestamp and date columns (parsed as RFC 3339 and YYYY-MM-DD first,
// else by PostgreSQL), strings in bytea columns (decoded from base64) and
// any value in json and jsonb columns (encoded as JSON, so a string becomes
// a JSON string): what the source reads, the sink writes back unchanged.
//
// Column values map to record values as follows (SQL NULL is nil
// everywhere): smallint, integer, bigint and oid give int64; real and
// double precision float64; numeric float64 (or, with numeric = "string",
// its exact decimal text); boolean bool; text, varchar, char and name
// string; json and jsonb the decoded value (integers as int64); timestamp
// with time zone an RFC 3339 string in UTC with nanoseconds trimmed, and
// timestamp without time zone the same, read as UTC; date "2006-01-02";
// bytea a standard base64 string; uuid its hyphenated text; arrays lists
// of their elements mapped the same way; every other type (interval, time,
// inet, money, ranges, enums...) its PostgreSQL text form. Infinite
// timestamps and dates give "infinity" and "-infinity".
//
// It imports operators, operators/codec, planner, runtime and pgx; never
// lang.
package postgres
