// Package dev runs what `mkt dev up` offers for a first try: a CNCF
// distribution registry and an index service in one process, on plain HTTP
// on localhost, the registry notifying the index of every push. It is the
// wiring only — the registry is testenv's, the index is index.Server with
// index.DevConfig and index.WriteDevTrust — so that mkt (and a Go program
// or a test that wants the same environment) starts it with one call.
package dev
