package lang

import (
	"fmt"
	"os"
	"testing"

	"github.com/flowrun/flowrun/lang/format"
)

func TestDebugFormat(t *testing.T) {
	src, _ := os.ReadFile(os.Getenv("F"))
	f, ds := Parse("x.flow", src)
	fmt.Println(ds)
	out := format.Format(f)
	fmt.Print(string(out))
	f2, _ := Parse("x.flow", out)
	out2 := format.Format(f2)
	fmt.Println("idempotent:", string(out) == string(out2))
}
