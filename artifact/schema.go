package artifact

import _ "embed"

// ExtensionSchema is the JSON Schema (draft 2020-12) of extension.yaml v1,
// for editors and other tools. The parser is the authority: it also checks
// what a schema cannot (SPDX expressions, semver constraints, entrypoints).
//
//go:embed schema/extension-v1.schema.json
var ExtensionSchema []byte
