package runtime

import (
	"context"
)

// outport is a task's side of one lossless output edge: the batch it is
// filling and the credits it has reserved for it.
type outport struct {
	e     *edge
	t     *task
	ex    *Execution
	pend  *batch
	avail int
	// cur are the acknowledgement units of the input being processed; the
	// pending batch takes references on them with its first record of that
	// input (acked).
	cur   []*ack
	acked bool
	sizes []int64
	err   error
}

func newOutport(ex *Execution, e *edge, t *task) *outport {
	if e == nil {
		return nil
	}
	return &outport{e: e, t: t, ex: ex}
}

// setAcks names the units the records emitted next derive from.
func (o *outport) setAcks(acks []*ack) {
	o.cur = acks
	o.acked = false
}

// emit appends r to the pending batch, reserving credit first and sending
// the batch when it is full. It reports false when ctx ended while waiting
// for credit; r is then lost.
func (o *outport) emit(ctx context.Context, r Record) bool {
	if o.avail == 0 && !o.refill(ctx) {
		return false
	}
	if o.pend == nil {
		o.pend = o.ex.pool.get()
		o.acked = false
	}
	if !o.acked {
		o.pend.addAcks(o.cur)
		o.acked = true
	}
	o.pend.recs = append(o.pend.recs, r)
	o.avail--
	if len(o.pend.recs) >= o.ex.batchSize {
		return o.flush(ctx)
	}
	return true
}

// refill reserves more credit: at once if there is some, otherwise after
// sending the pending batch, waiting for the consumer.
func (o *outport) refill(ctx context.Context) bool {
	n := o.e.tryReserve(o.ex.batchSize)
	if n == 0 {
		if !o.flush(ctx) {
			return false
		}
		var err error
		n, err = o.e.reserve(ctx, o.t, o.ex.batchSize)
		if err != nil {
			o.err = err
			return false
		}
	}
	o.avail += n
	return true
}

// flush sends the pending batch.
func (o *outport) flush(ctx context.Context) bool {
	b := o.pend
	if b == nil || len(b.recs) == 0 {
		return true
	}
	o.pend = nil
	if err := o.ex.pushBytes(ctx, o.t, o.e, b, &o.sizes); err != nil {
		o.err = err
		return false
	}
	return true
}

// finish sends what is pending, gives back unused credit and closes the
// edge.
func (o *outport) finish(ctx context.Context) {
	if o == nil {
		return
	}
	o.flush(ctx)
	o.e.unreserve(o.avail)
	o.avail = 0
	o.e.close()
}

// pushBytes queues b on e, whose record credits are reserved, charging its
// bytes first when e limits them (splitting b so that what is queued fits).
func (ex *Execution) pushBytes(ctx context.Context, t *task, e *edge, b *batch, scratch *[]int64) error {
	if e.capBytes == 0 {
		e.push(b)
		return nil
	}
	sizes := (*scratch)[:0]
	for i := range b.recs {
		sizes = append(sizes, RecordSize(b.recs[i]))
	}
	*scratch = sizes
	for {
		k, sum, err := e.chargeBytes(ctx, t, sizes)
		if err != nil {
			return err
		}
		if k == len(b.recs) {
			b.bytes = sum
			e.push(b)
			return nil
		}
		rest := ex.pool.get()
		rest.recs = append(rest.recs, b.recs[k:]...)
		rest.addAcks(b.acks)
		clear(b.recs[k:])
		b.recs = b.recs[:k]
		b.bytes = sum
		e.push(b)
		b = rest
		sizes = sizes[k:]
	}
}

// send queues all of b on the lossless edge e, waiting for credit and
// splitting b when credit comes in parts.
func (ex *Execution) send(ctx context.Context, t *task, e *edge, b *batch, scratch *[]int64) error {
	b.bytes = 0
	for {
		n, err := e.reserve(ctx, t, len(b.recs))
		if err != nil {
			return err
		}
		if n == len(b.recs) {
			return ex.pushBytes(ctx, t, e, b, scratch)
		}
		head := ex.pool.get()
		head.recs = append(head.recs, b.recs[:n]...)
		head.addAcks(b.acks)
		m := copy(b.recs, b.recs[n:])
		clear(b.recs[m:])
		b.recs = b.recs[:m]
		if err := ex.pushBytes(ctx, t, e, head, scratch); err != nil {
			return err
		}
	}
}
