package source

import "errors"

var errPending = errors.New("this kind cannot be built yet")
