package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// describe is the one-line message for err.
func describe(err error) string { return err.Error() }

// hintFor maps well-known failures to what the user can do about them. It
// is the one place that knows how errors read to people.
func hintFor(err error) string {
	var resp *errcode.ErrorResponse
	var unknownCA x509.UnknownAuthorityError
	var timeout *remote.TimeoutError
	switch {
	case errors.As(err, &timeout):
		return fmt.Sprintf("check that %s is up and reachable; if it is only slow, raise %s (now %s)", timeout.Host, timeoutFlags[timeout.Setting], timeout.Limit)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return "the registry wants credentials: run `mkt login REGISTRY` or pass --registry-config"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		return "the registry refused the credentials: run `mkt login REGISTRY` again"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden:
		return "the credentials lack permission for this repository"
	case errors.As(err, &unknownCA):
		return "the registry's certificate is not trusted: pass --ca-file CA.pem (or --insecure for a throwaway registry)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "the registry speaks plain HTTP: add --plain-http"
	case errors.Is(err, artifact.ErrNotExtension):
		return "mkt pulls Marketplace extensions only; use oras for other artifacts"
	case errors.Is(err, artifact.ErrUnsafeContent):
		return "nothing was written; report the artifact to its publisher"
	}
	return ""
}

// timeoutFlags name the global flag behind each RemoteOptions timeout.
var timeoutFlags = map[string]string{
	"ConnectTimeout": "--connect-timeout",
	"Timeout":        "--timeout",
	"RequestTimeout": "--request-timeout",
}

func isCobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "required flag")
}

// exactArgs is cobra.ExactArgs with a usage error, so bad arity exits 2.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
