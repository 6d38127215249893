// Package client is the light HTTP client of the index API (DESIGN §8):
// what Factory's Go API and `mkt search|resolve|install --index` link, without
// the index server's store, SQL drivers, metrics or templates. It only
// transports answers; checking them against what was asked and against
// the local policy is the caller's job (marketplace.Resolve does it),
// because an index is trusted to choose, never to verify.
//
// Client.Search and Client.ResolveQuery are the API's search and
// resolution; an error answer is an *APIError whose status and code the
// server chose from the error's type (errors.go), matched with errors.Is
// against ErrNotFound, ErrUnauthorized, ErrForbidden, ErrBadRequest and
// resolve.ErrUnresolvable. The index serves this package's Summary and
// SearchPage, so their JSON is the API's by construction.
package client
