// Command mkt publishes, inspects and consumes Marketplace extensions stored
// as OCI artifacts in any registry (docs/cli.md). Its server commands — index
// serve, index token create|list|revoke, dev up — are run by mkt-server, the
// companion program (cmd/mkt-server), which mkt looks for in $MKT_SERVER,
// beside its own executable, then on PATH: mkt does not link the index
// service or the embedded registry, so that it starts as fast as oras.
package main

import "github.com/connectsoft/marketplace/internal/cli"

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() { cli.Main(version, nil) }
