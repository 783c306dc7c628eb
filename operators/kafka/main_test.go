package kafka_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them; every
// test closes its kfake cluster and clients before it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
