// Package source holds the source kinds (generate, file, stdin) and a
// records source for tests. A source reads only when the pipeline grants it
// credit: Emit blocks, and so does the reading. It imports operators,
// operators/codec, planner and runtime; never lang.
package source
