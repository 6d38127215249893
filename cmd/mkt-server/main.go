// Command mkt-server is mkt with its server commands in process: index
// serve, index token create|list|revoke and dev up, which link the index
// service (SQLite, PostgreSQL, River, Prometheus, templates) and the embedded
// CNCF distribution registry. mkt runs it for those commands; it takes every
// other mkt command as well (docs/cli.md, "mkt and mkt-server").
package main

import (
	"github.com/connectsoft/marketplace/internal/cli"
	"github.com/connectsoft/marketplace/internal/cli/servercmd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() { cli.Main(version, servercmd.Commands{}) }
