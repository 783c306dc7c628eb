package call_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/internal/optest"
)

func TestExecFromFlow(t *testing.T) {
	st := optest.PlanStage(t, `pipeline "p" {
  source "in" {
    kind = "generate"
  }
  buffered "shout" {
    from        = in
    call        = "exec"
    command     = ["sh", "-c", "tr a-z A-Z"]
    response    = "json"
    as          = "loud"
    concurrency = 2
    ordered     = false
  }
  sink "out" {
    from = shout
    kind = "discard"
  }
}
`, "shout")
	n := optest.Build(t, st, optest.Env(nil))
	if n.Caller.Concurrency() != 2 || n.Caller.Ordered() {
		t.Errorf("Concurrency %d, Ordered %v", n.Caller.Concurrency(), n.Caller.Ordered())
	}
	got, err := call(t, n.Caller, M{"msg": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(M{"msg": "hi", "loud": M{"MSG": "HI"}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
