//go:build unix

package cli

import (
	"syscall"
)

// execInPlace replaces this process with path, given args: it returns only
// if that failed.
func execInPlace(path string, args, env []string) error {
	return syscall.Exec(path, append([]string{path}, args...), env)
}
