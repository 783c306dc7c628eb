package nats

import (
	"fmt"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind {
	return []*operators.Kind{sourceKind, sinkKind}
}

// defaultURL is where a NATS server listens by default.
const defaultURL = "nats://127.0.0.1:4222"

// urlOption is the server address option shared by the source and sink.
var urlOption = planner.OptionSpec{Name: "url", Type: planner.String, Default: defaultURL,
	Doc: "The NATS server, or a comma-separated list of servers of one cluster (nats://host:4222)."}

// jetstreamOption chooses between JetStream and core NATS.
func jetstreamOption(doc string) planner.OptionSpec {
	return planner.OptionSpec{Name: "jetstream", Type: planner.Bool, Default: true, Doc: doc}
}

// checkURL reports a url option that names no nats:// (or tls://) server.
func checkURL(p *operators.Problems, o planner.Options) {
	for _, u := range strings.Split(o.String("url"), ",") {
		u = strings.TrimSpace(u)
		if !(strings.HasPrefix(u, "nats://") || strings.HasPrefix(u, "tls://")) || len(u) <= len("nats://") {
			p.Add("url", "the url %q must name a server as nats://host:port (or tls://host:port)", u)
		}
	}
}

// checkSubject reports a subject (or filter, when wildcards) that NATS
// would refuse.
func checkSubject(p *operators.Problems, option, subject string, wildcards bool) {
	if subject == "" {
		return
	}
	for _, tok := range strings.Split(subject, ".") {
		switch {
		case tok == "":
			p.Add(option, "the subject %q has an empty token: write tokens separated by single dots", subject)
			return
		case strings.ContainsAny(tok, " \t\r\n"):
			p.Add(option, "the subject %q contains white space", subject)
			return
		case !wildcards && (tok == "*" || tok == ">"):
			p.Add(option, "the subject %q has a wildcard, which cannot be published to", subject)
			return
		}
	}
}

// connect opens a connection that reconnects forever; name identifies the
// stage to the server's monitoring.
func connect(url, name string, timeout time.Duration) (*natsgo.Conn, error) {
	nc, err := natsgo.Connect(url,
		natsgo.Name(name),
		natsgo.Timeout(timeout),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250*time.Millisecond),
		natsgo.RetryOnFailedConnect(false),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	return nc, nil
}
