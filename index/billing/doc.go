// Package billing turns usage and terms into money: a publisher's monthly
// revenue-share statement (DESIGN §6.4), one line per extension, tenant and
// pricing model (and terms in force), each with the units counted, the unit
// price, the gross, and the platform's and the publisher's shares.
//
// The parts: Terms are read from the terms attestations the index verified
// at ingest (store.Version.Evidence), only those signed by a key the
// publisher owns counting (TrustedTerms); Segments turn one version's terms
// into the windows each is in force; a Builder asks the usage store for the
// month's events summed per version, tenant, type and segment (the grouping
// is SQL's, never a stream of events through Go) and prices the lines.
// Money is exact decimal (cockroachdb/apd), rounded half-even to the
// currency's ISO 4217 minor unit once per line: the gross is units × unit
// price rounded, the platform's share is gross × platform percent rounded,
// and the publisher's share is the remainder, so platform + publisher =
// gross on every line and the totals are the exact sums of the lines.
//
// Closing a period (Closer) freezes the statement in the store, signs its
// JSON as cosign sign-blob does and pushes it as an OCI artifact of type
// application/vnd.connectsoft.statement.v1+json. Usage that arrives after a
// period closed lands in the statement of the month it arrived in, as
// adjustment lines naming the original period. docs/billing.md has the
// rules for publishers.
package billing
