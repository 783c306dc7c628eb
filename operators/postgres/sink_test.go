package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/postgres"
	"github.com/flowrun/flowrun/operators/postgres/pgtest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// sink plans a generate → postgres pipeline from a .flow snippet of the
// sink's options and builds the sink.
func sink(t testing.TB, dsn, options string) *postgres.Sink {
	t.Helper()
	src := fmt.Sprintf(`
pipeline "p" {
  source "g" {
    kind  = "generate"
    count = 1
  }
  sink "db" {
    from = g
    kind = "postgres"
    dsn  = %q
%s
  }
}
`, dsn, options)
	n := optest.Build(t, optest.PlanStage(t, src, "db"), optest.Env(nil))
	s, ok := n.Sink.(*postgres.Sink)
	if !ok {
		t.Fatalf("built %T, want *postgres.Sink", n.Sink)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// query returns the rows of sql as maps, through the source's type mapping
// (pgx's own, here: the tests compare plain values).
func query(t *testing.T, c *pgx.Conn, sql string) []M {
	t.Helper()
	rows, err := c.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]M, len(got))
	for i, r := range got {
		out[i] = r
	}
	return out
}

func write(t *testing.T, s flowruntime.Sink, fields ...M) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Write(ctx, optest.Records(fields...))
}

func TestSink(t *testing.T) {
	srv := pgtest.Start(t)
	c := srv.Conn(t)

	t.Run("copy", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE copied (id bigint PRIMARY KEY, name text NOT NULL,
  price numeric(10,2), ok boolean, at timestamptz, doc jsonb, tags text[],
  total bigint GENERATED ALWAYS AS (id * 10) STORED, created date DEFAULT '2026-01-01')`)
		s := sink(t, srv.DSN(), `table = "copied"`)
		err := write(t, s,
			M{"id": int64(1), "name": "a", "price": 1.25, "ok": true, "at": "2026-03-04T05:06:07Z",
				"doc": M{"k": []any{int64(1), "x"}}, "tags": []any{"p", "q"}, "created": "2026-02-02", "extra": "ignored"},
			M{"id": int64(2), "name": "b"},
		)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"id", "name", "price", "ok", "at", "doc", "tags", "created"}, s.Columns()); diff != "" {
			t.Errorf("columns read from the table (-want +got):\n%s", diff)
		}
		got := query(t, c, `SELECT id, name, price::float8 AS price, ok, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at,
  doc::text AS doc, array_to_string(tags, ',') AS tags, total, created::text AS created FROM copied ORDER BY id`)
		want := []M{
			{"id": int64(1), "name": "a", "price": 1.25, "ok": true, "at": "2026-03-04 05:06:07",
				"doc": `{"k": [1, "x"]}`, "tags": "p,q", "total": int64(10), "created": "2026-02-02"},
			{"id": int64(2), "name": "b", "price": nil, "ok": nil, "at": nil, "doc": nil, "tags": nil, "total": int64(20), "created": nil},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if s.Written() != 2 {
			t.Errorf("Written = %d, want 2", s.Written())
		}
	})

	t.Run("columns", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE listed (id serial PRIMARY KEY, name text, created date DEFAULT '2026-01-01')`)
		s := sink(t, srv.DSN(), `
    table   = "public.listed"
    columns = ["name"]
`)
		if err := write(t, s, M{"name": "x", "id": int64(99)}, M{"name": "y"}); err != nil {
			t.Fatal(err)
		}
		got := query(t, c, `SELECT id, name, created::text AS created FROM listed ORDER BY id`)
		want := []M{{"id": int32(1), "name": "x", "created": "2026-01-01"}, {"id": int32(2), "name": "y", "created": "2026-01-01"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("upsert", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE kv (k text, n int, v text, PRIMARY KEY (k, n))`)
		s := sink(t, srv.DSN(), `
    table      = "kv"
    upsert_key = ["k", "n"]
`)
		if err := write(t, s, M{"k": "a", "n": int64(1), "v": "first"}, M{"k": "b", "n": int64(1), "v": "first"}); err != nil {
			t.Fatal(err)
		}
		// One batch updating a row twice: the last record wins.
		if err := write(t, s,
			M{"k": "a", "n": int64(1), "v": "second"}, M{"k": "a", "n": int64(2), "v": "new"},
			M{"k": "a", "n": int64(1), "v": "third"}); err != nil {
			t.Fatal(err)
		}
		got := query(t, c, `SELECT k, n, v FROM kv ORDER BY k, n`)
		want := []M{{"k": "a", "n": int32(1), "v": "third"}, {"k": "a", "n": int32(2), "v": "new"}, {"k": "b", "n": int32(1), "v": "first"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("insert in chunks", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE wide (id int PRIMARY KEY, a int, b int, c int, d int)`)
		s := sink(t, srv.DSN(), `
    table  = "wide"
    method = "insert"
`)
		// 20,000 rows of 5 columns take 100,000 parameters: more than one
		// statement may carry.
		recs := make([]M, 20000)
		for i := range recs {
			n := int64(i)
			recs[i] = M{"id": n, "a": n, "b": n, "c": n, "d": n}
		}
		if err := write(t, s, recs...); err != nil {
			t.Fatal(err)
		}
		got := query(t, c, `SELECT count(*) AS n, sum(d) AS s FROM wide`)
		if got[0]["n"] != int64(20000) || fmt.Sprint(got[0]["s"]) != "199990000" {
			t.Errorf("count and sum = %v, want 20000 and 199990000", got[0])
		}
	})

	t.Run("all or nothing", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE strict (id int PRIMARY KEY, name text NOT NULL)`)
		for _, method := range []string{"copy", "insert"} {
			s := sink(t, srv.DSN(), fmt.Sprintf(`
    table  = "strict"
    method = %q
`, method))
			err := write(t, s, M{"id": int64(1), "name": "ok"}, M{"id": int64(2)})
			if err == nil || !strings.Contains(err.Error(), "not-null") && !strings.Contains(err.Error(), "null value") {
				t.Errorf("%s: Write = %v, want a not-null violation", method, err)
			}
			if !onerror.IsPermanent(err) {
				t.Errorf("%s: a not-null violation is not marked permanent: retrying it cannot help", method)
			}
			if got := query(t, c, `SELECT count(*) AS n FROM strict`); got[0]["n"] != int64(0) {
				t.Errorf("%s: a failed batch left %v rows", method, got[0]["n"])
			}
			// The sink is usable after a failed batch.
			if err := write(t, s, M{"id": int64(3), "name": "ok"}); err != nil {
				t.Errorf("%s: Write after a failure: %v", method, err)
			}
			srv.Exec(t, `TRUNCATE strict`)
		}
	})

	t.Run("bad value", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE blobs (id int PRIMARY KEY, data bytea)`)
		s := sink(t, srv.DSN(), `table = "blobs"`)
		err := write(t, s, M{"id": int64(1), "data": "AQL/"}, M{"id": int64(2), "data": "not base64!"})
		if err == nil || !strings.Contains(err.Error(), `column "data": a bytea value must be a base64 string`) || !onerror.IsPermanent(err) {
			t.Errorf("Write = %v (permanent: %v), want a permanent error about column data", err, onerror.IsPermanent(err))
		}
		if err := write(t, s, M{"id": int64(1), "data": "AQL/"}); err != nil {
			t.Fatal(err)
		}
		var data []byte
		if err := c.QueryRow(context.Background(), `SELECT data FROM blobs`).Scan(&data); err != nil || string(data) != "\x01\x02\xff" {
			t.Errorf("data = %q, %v; want 01 02 ff", data, err)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		// What the source reads from a table, the sink writes back the same.
		const columns = `id int PRIMARY KEY, s smallint, i integer, b bigint, r real, d double precision,
  n numeric(10,2), ok boolean, t text, vc varchar(10), ch char(3), j json, jb jsonb,
  ts timestamptz, tsn timestamp, dt date, by bytea, u uuid, arr int[], tarr text[],
  iv interval, tm time, ip inet, mo mood, nul text`
		srv.Exec(t, `CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE original (`+columns+`);
CREATE TABLE copy_c (`+columns+`);
CREATE TABLE copy_i (`+columns+`);
INSERT INTO original VALUES (1, 7, 8, 9000000000, 1.5, 2.25, 12.34, true, 'x', 'y', 'z',
  '{"a": 1, "b": [1.5, "s"]}', '{"k": 9007199254740993}',
  '2026-01-02 03:04:05.123456+02', '2026-01-02 03:04:05', '2026-01-02', '\x0102ff',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,NULL}', '{a,b}', '1 day 02:00:00',
  '12:34:56', '192.168.0.1', 'happy', NULL);
INSERT INTO original (id, n, ts, dt) VALUES (2, 3.5, 'infinity', '-infinity');`)
		recs := runSource(t, source(t, srv.DSN(), `
    query = "SELECT * FROM original"
    key   = "id"
`)).Records()
		for _, method := range []string{"copy", "insert"} {
			table := "copy_" + method[:1]
			s := sink(t, srv.DSN(), fmt.Sprintf("table = %q\nmethod = %q", table, method))
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatalf("%s: %v", method, err)
			}
			// json keeps its text as written: compare it as jsonb.
			diff := query(t, c, fmt.Sprintf(`SELECT count(*) AS n FROM (
  (SELECT o::text FROM (SELECT %[1]s, j::jsonb AS j FROM original) o
   EXCEPT SELECT c::text FROM (SELECT %[1]s, j::jsonb AS j FROM %[2]s) c)
  UNION ALL
  (SELECT c::text FROM (SELECT %[1]s, j::jsonb AS j FROM %[2]s) c
   EXCEPT SELECT o::text FROM (SELECT %[1]s, j::jsonb AS j FROM original) o)) d`,
				"id, s, i, b, r, d, n, ok, t, vc, ch, jb, ts, tsn, dt, by, u, arr, tarr, iv, tm, ip, mo, nul", table))
			if diff[0]["n"] != int64(0) {
				got := query(t, c, "SELECT * FROM "+table+" ORDER BY id")
				t.Errorf("%s: %v rows differ from the original; wrote %v", method, diff[0]["n"], got)
			}
		}
	})

	t.Run("no table", func(t *testing.T) {
		s := sink(t, srv.DSN(), `table = "missing"`)
		err := write(t, s, M{"id": int64(1)})
		if err == nil || !strings.Contains(err.Error(), `"missing" does not exist`) {
			t.Errorf("Write = %v, want an error saying the table does not exist", err)
		}
	})
}
