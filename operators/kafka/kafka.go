package kafka

import (
	"strings"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind {
	return []*operators.Kind{sourceKind, sinkKind}
}

// brokersOption is the seed brokers option shared by the source and sink.
var brokersOption = planner.OptionSpec{Name: "brokers", Type: planner.StringList, Required: true,
	Doc: "The seed brokers, host:port, as a list or one string."}

// topicOption is the topic option shared by the source and sink.
func topicOption(doc string) planner.OptionSpec {
	return planner.OptionSpec{Name: "topic", Type: planner.String, Required: true, Doc: doc}
}

// codecOption is how record values are decoded or encoded.
var codecOption = planner.OptionSpec{Name: "codec", Type: planner.Enum, Enum: []string{"json", "lines"}, Default: "json",
	Doc: "json: each Kafka record's value is one JSON object; lines: the value is the text of one field ({line: \"...\"} when read)."}

// checkCommon reports brokers and topics Kafka would refuse.
func checkCommon(p *operators.Problems, o planner.Options) {
	brokers, _ := o["brokers"].([]string)
	if len(brokers) == 0 {
		p.Add("brokers", "name at least one broker as host:port")
	}
	for _, b := range brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 || strings.Contains(b, "://") {
			p.Add("brokers", "the broker %q must be host:port", b)
		}
	}
	t := o.String("topic")
	if t == "" || len(t) > 249 || strings.Trim(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		p.Add("topic", "the topic %q must be 1 to 249 letters, digits, dots, underscores or dashes", t)
	}
}
