package signing

import "embed"

// Schemas holds the JSON Schemas (draft 2020-12) of the Marketplace
// predicate types, one file each (review-v1.schema.json, …), for tools that
// produce predicates. NormalizePredicate is the authority; a test keeps the
// two in agreement.
//
//go:embed schema/*.schema.json
var Schemas embed.FS
