// Package nats holds the NATS connector kinds: the nats source, a
// JetStream durable pull consumer shared by every process that runs the
// same pipeline (or, with jetstream = false, a lossy core NATS
// subscription), and the nats sink, which publishes each record and waits
// for JetStream's acknowledgement.
//
// The source pulls only as much as the pipeline has room for: it asks for
// the next batch once Emit has returned, never holds more than
// max_ack_pending messages unacknowledged, and acknowledges a message only
// when the runtime reports every record derived from it finished. A
// process that dies leaves its messages unacknowledged, and JetStream
// redelivers them to the others once ack_wait has passed.
//
// It imports operators, operators/codec, planner, planner/expression and
// runtime; never lang, and never another operators family.
package nats
