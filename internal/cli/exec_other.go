//go:build !unix

package cli

import "errors"

// execInPlace is not possible here: mkt-server runs as a child process.
func execInPlace(string, []string, []string) error { return errors.ErrUnsupported }
