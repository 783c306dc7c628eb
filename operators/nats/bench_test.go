package nats_test

import (
	"testing"
	"time"
)

// BenchmarkRelay measures one process (an in-process execution) relaying
// 50,000 JSON messages from one stream to another through a map stage,
// with the NATS server embedded in the same process: records/s counts
// records read, tagged, stored by JetStream and acknowledged.
func BenchmarkRelay(b *testing.B) {
	const n = 50_000
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		url := startServer(b)
		c := dial(b, url)
		c.stream("IN", "in.>")
		c.stream("OUT", "out.>")
		c.publish("in.a", 0, n)
		b.StartTimer()
		began := time.Now()
		ex, _ := start(b, relay, "p", relayVars(url, "bench"))
		for c.acked("IN", "work") < n {
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(began)
		b.StopTimer()
		ex.Stop()
		if err := ex.Wait(); err != nil {
			b.Fatal(err)
		}
		if got := c.count("OUT"); got != n {
			b.Fatalf("OUT holds %d messages, want %d", got, n)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "records/s")
}
