package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
)

// Kinds returns the postgres source and sink.
func Kinds() []*operators.Kind { return []*operators.Kind{sourceKind, sinkKind} }

// connectTimeout bounds dialling the server.
const connectTimeout = 10 * time.Second

// dial connects to dsn.
func dial(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > connectTimeout {
		cfg.ConnectTimeout = connectTimeout
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// dsnOption is the connection string option of the source and the sink.
var dsnOption = planner.OptionSpec{Name: "dsn", Type: planner.String, Required: true,
	Doc: "The connection string, a URL (postgres://user:password@host:5432/db?sslmode=disable) or key=value pairs (host=... dbname=...)."}

// checkDSN reports a dsn that cannot be parsed.
func checkDSN(p *operators.Problems, dsn string) {
	if dsn == "" {
		p.Add("dsn", "the dsn is empty: give a connection string such as \"postgres://user@host:5432/db\"")
		return
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		p.Add("dsn", "the dsn is not a valid connection string: %s", redact(err.Error(), dsn))
	}
}

// redact removes a DSN's text from a message, since it may hold a password.
func redact(msg, dsn string) string {
	return strings.ReplaceAll(msg, dsn, "<dsn>")
}

// transient reports whether err is worth retrying on a fresh connection:
// the connection broke or could not be made, the server is shutting down or
// starting, or the transaction lost a serialization or deadlock race.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "40001", // serialization_failure
			pgErr.Code == "40P01", // deadlock_detected
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03": // cannot_connect_now
			return true
		}
		return false
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.As(err, &connErr) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed")
}

// identifier splits a table name "name" or "schema.name" into the parts
// of a quoted identifier.
func identifier(name string) pgx.Identifier {
	return pgx.Identifier(strings.SplitN(name, ".", 2))
}

// textOIDs are the types read in PostgreSQL's text form: the query asks
// the server for them as text (textFormats).
var textOIDs = func() map[uint32]bool {
	m := map[uint32]bool{}
	for _, oid := range []uint32{
		pgtype.QCharOID, pgtype.QCharArrayOID, pgtype.TIDOID, pgtype.TIDArrayOID,
		pgtype.XIDOID, pgtype.XIDArrayOID, pgtype.CIDOID, pgtype.CIDArrayOID,
		pgtype.XID8OID, pgtype.XID8ArrayOID, pgtype.XMLOID, pgtype.XMLArrayOID,
		pgtype.PointOID, pgtype.PointArrayOID, pgtype.LsegOID, pgtype.LsegArrayOID,
		pgtype.PathOID, pgtype.PathArrayOID, pgtype.BoxOID, pgtype.BoxArrayOID,
		pgtype.PolygonOID, pgtype.PolygonArrayOID, pgtype.LineOID, pgtype.LineArrayOID,
		pgtype.CircleOID, pgtype.CircleArrayOID, pgtype.CIDROID, pgtype.CIDRArrayOID,
		pgtype.InetOID, pgtype.InetArrayOID, pgtype.MacaddrOID, pgtype.MacaddrArrayOID,
		pgtype.Macaddr8OID, pgtype.ACLItemOID, pgtype.ACLItemArrayOID,
		pgtype.TimeOID, pgtype.TimeArrayOID, pgtype.TimetzOID, pgtype.TimetzArrayOID,
		pgtype.IntervalOID, pgtype.IntervalArrayOID, pgtype.BitOID, pgtype.BitArrayOID,
		pgtype.VarbitOID, pgtype.VarbitArrayOID, pgtype.RecordOID, pgtype.RecordArrayOID,
		pgtype.TSVectorOID, pgtype.TSVectorArrayOID, pgtype.JSONPathOID, pgtype.JSONPathArrayOID,
		pgtype.DaterangeOID, pgtype.DaterangeArrayOID, pgtype.Int4rangeOID, pgtype.Int4rangeArrayOID,
		pgtype.NumrangeOID, pgtype.NumrangeArrayOID, pgtype.TsrangeOID, pgtype.TsrangeArrayOID,
		pgtype.TstzrangeOID, pgtype.TstzrangeArrayOID, pgtype.Int8rangeOID, pgtype.Int8rangeArrayOID,
		pgtype.Int4multirangeOID, pgtype.NummultirangeOID, pgtype.TsmultirangeOID,
		pgtype.TstzmultirangeOID, pgtype.DatemultirangeOID, pgtype.Int8multirangeOID,
		pgtype.Int4multirangeArrayOID, pgtype.NummultirangeArrayOID, pgtype.TsmultirangeArrayOID,
		pgtype.TstzmultirangeArrayOID, pgtype.DatemultirangeArrayOID, pgtype.Int8multirangeArrayOID,
	} {
		m[oid] = true
	}
	return m
}()

// textFormats asks the server for the textOIDs types as text.
var textFormats = func() pgx.QueryResultFormatsByOID {
	f := pgx.QueryResultFormatsByOID{}
	for oid := range textOIDs {
		f[oid] = pgtype.TextFormatCode
	}
	return f
}()

// columnDecoder turns one column's wire value into a record value.
type columnDecoder struct {
	m      *pgtype.Map
	oid    uint32
	format int16
	codec  pgtype.Codec
	// numericText gives numeric values as their decimal text.
	numericText bool
	json        *codec.Decoder
}

func newColumnDecoder(m *pgtype.Map, fd pgconn.FieldDescription, numericText bool, json *codec.Decoder) *columnDecoder {
	d := &columnDecoder{m: m, oid: fd.DataTypeOID, format: fd.Format, numericText: numericText, json: json}
	if t, ok := m.TypeForOID(fd.DataTypeOID); ok {
		d.codec = t.Codec
	}
	return d
}

// decode returns the record value of raw and the value as pgx decodes it
// (what a query parameter of the same type accepts).
func (d *columnDecoder) decode(raw []byte) (value, native any, err error) {
	if raw == nil {
		return nil, nil, nil
	}
	switch d.oid {
	case pgtype.JSONOID, pgtype.JSONBOID:
		text := raw
		if d.oid == pgtype.JSONBOID && d.format == pgtype.BinaryFormatCode {
			if len(text) == 0 || text[0] != 1 {
				return nil, nil, errors.New("jsonb: unknown binary version")
			}
			text = text[1:]
		}
		v, err := d.json.Decode(text)
		return v, string(text), err
	}
	if d.codec == nil || textOIDs[d.oid] {
		if d.format == pgtype.TextFormatCode {
			s := string(raw)
			return s, s, nil
		}
		return nil, nil, fmt.Errorf("type oid %d has no decoder", d.oid)
	}
	native, err = d.codec.DecodeValue(d.m, d.oid, d.format, raw)
	if err != nil {
		return nil, nil, err
	}
	value, err = d.normalize(d.oid, native)
	return value, native, err
}

// normalize maps a value pgx decoded for type oid to a record value.
func (d *columnDecoder) normalize(oid uint32, v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x, nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case time.Time:
		if oid == pgtype.DateOID {
			return x.Format(time.DateOnly), nil
		}
		return x.UTC().Format(time.RFC3339Nano), nil
	case pgtype.InfinityModifier:
		switch x {
		case pgtype.Infinity:
			return "infinity", nil
		case pgtype.NegativeInfinity:
			return "-infinity", nil
		}
		return nil, nil
	case pgtype.Numeric:
		if !d.numericText {
			f, err := x.Float64Value()
			if err != nil {
				return nil, fmt.Errorf("numeric: %w", err)
			}
			if f.Valid && !math.IsNaN(f.Float64) && !math.IsInf(f.Float64, 0) {
				return f.Float64, nil
			}
		}
		return d.text(pgtype.NumericOID, x)
	case []byte:
		if oid == pgtype.ByteaOID {
			return base64.StdEncoding.EncodeToString(x), nil
		}
		return string(x), nil
	case [16]byte:
		return d.text(pgtype.UUIDOID, x)
	case []any:
		elem := uint32(0)
		if t, ok := d.m.TypeForOID(oid); ok {
			if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok && ac.ElementType != nil {
				elem = ac.ElementType.OID
			}
		}
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = d.normalize(elem, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		return x, nil
	}
	return d.text(oid, v)
}

// text returns v in PostgreSQL's text form for type oid.
func (d *columnDecoder) text(oid uint32, v any) (any, error) {
	if oid != 0 {
		if b, err := d.m.Encode(oid, pgtype.TextFormatCode, v, nil); err == nil {
			return string(b), nil
		}
	}
	if s, ok := v.(fmt.Stringer); ok {
		return s.String(), nil
	}
	return fmt.Sprint(v), nil
}
