// Package faulty holds fault-injecting test doubles for the error-policy
// tests of several packages: [Server], an HTTP target that fails requests as
// its test scripts them, and [Sink], a runtime sink that fails writes the
// same way, with [Graph] to run it behind a source without a .flow file.
//
// It imports runtime and runtime/onerror and the standard library, never
// lang, planner or an operator package, so every operator package's tests
// may use it. Only tests import it.
package faulty
