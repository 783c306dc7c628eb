// Package kafka holds the Kafka connector kinds, built on franz-go (kgo):
// the kafka source, a consumer-group member that several processes of the
// same pipeline share (cooperative-sticky rebalancing), and the kafka sink,
// an idempotent producer that waits for the brokers' acknowledgements.
//
// The source commits offsets only for records that are finished: it keeps a
// runtime.Checkpoint per partition, fed by the done callbacks of its
// batches, and commits the highest offset before which every record of the
// partition is finished, every commit_interval, when a partition is
// revoked and when it closes. It polls only once the previous batch was
// taken (Emit returned), so backpressure stops the polling and, with it,
// the client's fetching.
//
// It imports operators, operators/codec, planner, planner/expression and
// runtime; never lang, and never another operators family.
package kafka
