package runtime

// Sizes used by RecordSize.
const (
	recordOverhead = 64
	mapOverhead    = 64
	valueOverhead  = 16
)

// RecordSize estimates the memory a record holds, for edges that limit
// bytes. It is an approximate, allocation-free walk: 64 bytes per record
// and per map or list, 16 bytes per value plus the length of each string
// and map key. Nested values are counted to any depth.
func RecordSize(r Record) int64 {
	return recordOverhead + int64(len(r.Meta.Source)+len(r.Meta.File)) + mapSize(r.Fields)
}

func mapSize(m map[string]any) int64 {
	n := int64(mapOverhead)
	for k, v := range m {
		n += int64(len(k)) + valueSize(v)
	}
	return n
}

func valueSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return valueOverhead + int64(len(v))
	case []byte:
		return valueOverhead + int64(len(v))
	case map[string]any:
		return valueOverhead + mapSize(v)
	case []any:
		n := int64(valueOverhead + mapOverhead)
		for _, e := range v {
			n += valueSize(e)
		}
		return n
	default:
		return valueOverhead
	}
}

// copyRecord returns a deep copy of r, so that two branches of a broadcast
// may change their records independently.
func copyRecord(r Record) Record {
	r.Fields = copyMap(r.Fields)
	return r
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = copyValue(v)
	}
	return c
}

func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return copyMap(v)
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = copyValue(e)
		}
		return c
	case []byte:
		return append([]byte(nil), v...)
	default:
		return v
	}
}
