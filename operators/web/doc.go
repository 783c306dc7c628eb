// Package web holds the network connector kinds that speak HTTP: the http
// source (an ingest server) and sink (batched POST), the websocket source
// (a reconnecting client) and sink (a broadcast server), and the sse source
// (a reconnecting event-stream client) and sink (an event-stream server with
// Last-Event-ID resume).
//
// Every source reads only while the pipeline grants it credit: the ingest
// server admits a request only when the pipeline takes its records within
// the hold time and answers 429 otherwise; the clients stop reading, so TCP
// pushes back on the peer. The broadcast sinks never block the pipeline:
// each connected client has a bounded queue and a stated policy for a
// client that falls behind. Servers bind when the pipeline starts (never
// when a stage is built) and report their bound address, so listen =
// "127.0.0.1:0" works.
//
// It imports operators, operators/codec, planner, planner/expression and
// runtime; never lang, and never another operators family.
package web
