// Package remote holds how this module reaches registries: the connection
// settings (Options: plain HTTP, TLS verification and extra CA roots,
// credentials, user agent, timeouts) and the one HTTP client built from
// them that both OCI stacks share.
//
// artifact pushes and pulls through oras-go, signing reads and writes
// signatures through go-containerregistry; both take their connections,
// TLS configuration, timeouts and credentials from the auth.Client that
// Options.AuthClient returns, so a setting made once applies to every
// registry read. A long-running caller (the index, an install of many
// extensions) calls Options.Shared once and hands the result to both
// stacks: every repository opened with it, by either stack, then goes
// through one connection pool.
//
// The package is a leaf: it imports nothing of this module.
package remote
