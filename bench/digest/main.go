// Command digest prints an order-independent digest of JSONL files, so that
// bench/run can check that every contender of a workload wrote the same
// records whatever their order:
//
//	digest FILE...
//
// prints "records=N batches=B sum=HEX". Every line must be a JSON object; a
// line {"count": n, "records": [...]} is a batch: it counts once in B, its n
// must equal the length of records, and each of its records is digested as
// if it were a line of its own. Each record is re-encoded with sorted keys
// before it is hashed, so key order and spacing do not matter, and the
// hashes are added up, so line order and batch boundaries do not either.
package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/flowrun/flowrun/operators/codec"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: digest FILE...")
		os.Exit(2)
	}
	var d digest
	for _, name := range os.Args[1:] {
		if err := d.file(name); err != nil {
			fmt.Fprintln(os.Stderr, "digest:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("records=%d batches=%d sum=%016x\n", d.records, d.batches, d.sum)
}

type digest struct {
	dec     codec.Decoder
	enc     codec.Encoder
	buf     []byte
	records int64
	batches int64
	sum     uint64
}

func (d *digest) file(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return d.read(name, f)
}

func (d *digest) read(name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		rec, err := d.dec.DecodeObject(sc.Bytes())
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
		recs, isBatch := rec["records"].([]any)
		if !isBatch || len(rec) != 2 {
			if err := d.add(rec); err != nil {
				return fmt.Errorf("%s:%d: %w", name, line, err)
			}
			continue
		}
		if n, _ := rec["count"].(int64); n != int64(len(recs)) {
			return fmt.Errorf("%s:%d: a batch of %d records says count %v", name, line, len(recs), rec["count"])
		}
		d.batches++
		for _, r := range recs {
			m, ok := r.(map[string]any)
			if !ok {
				return fmt.Errorf("%s:%d: a batch holds a %T, not an object", name, line, r)
			}
			if err := d.add(m); err != nil {
				return fmt.Errorf("%s:%d: %w", name, line, err)
			}
		}
	}
	return sc.Err()
}

// add hashes the canonical encoding of rec into the sum.
func (d *digest) add(rec map[string]any) error {
	var err error
	if d.buf, err = d.enc.AppendObject(d.buf[:0], rec); err != nil {
		return err
	}
	h := fnv.New64a()
	h.Write(d.buf)
	d.sum += mix(h.Sum64())
	d.records++
	return nil
}

// mix is the splitmix64 finaliser: it spreads fnv's bits so that the sum of
// hashes of distinct records rarely collides.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
