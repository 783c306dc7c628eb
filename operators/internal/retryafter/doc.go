// Package retryafter reads the HTTP Retry-After header for the connectors
// that honour it (the http sink, a buffered http call): the one place its
// two forms are parsed and its wait is bounded. The connectors mark their
// error with the wait through runtime/onerror, whose policy honours it.
//
// It imports only the standard library, never lang, planner, runtime or an
// operator package.
package retryafter
