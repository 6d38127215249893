package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Exit codes of the contract (DESIGN §7).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Error codes: the stable, machine-readable "code" of a JSON error. Scripts
// switch on them; messages are for people and may change.
const (
	codeUsage                = "usage"
	codeFailed               = "failed"
	codeVerificationFailed   = "verificationFailed"
	codeDenied               = "denied"
	codeNotFound             = "notFound"
	codeUnauthorized         = "unauthorized"
	codeForbidden            = "forbidden"
	codeTimeout              = "timeout"
	codeUntrustedCertificate = "untrustedCertificate"
	codePlainHTTP            = "plainHTTP"
	codeNotExtension         = "notExtension"
	codeUnsafeContent        = "unsafeContent"
)

// errorBody is a failure as the JSON contract prints it, under "error".
type errorBody struct {
	// Code is one of the code constants.
	Code string `json:"code"`
	// Message says what went wrong, as stderr does after "mkt: ".
	Message string `json:"message"`
	// Hint says what to do about it, when mkt knows.
	Hint string `json:"hint,omitempty"`
	// ExitCode is the process's exit status: 1 failure, 2 bad usage.
	ExitCode int `json:"exitCode"`
}

// usageError marks bad invocations, which exit with 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// describeError is the one place that knows how errors read to people and
// to scripts: the message, the code, the hint and the exit status of err.
func describeError(err error) *errorBody {
	b := &errorBody{Code: codeFailed, Message: message(err), ExitCode: exitFailure}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		b.Code, b.ExitCode = codeUsage, exitUsage
		b.Hint = "run `mkt help` or `mkt COMMAND --help` for the usage"
		return b
	}
	var resp *errcode.ErrorResponse
	var unknownCA x509.UnknownAuthorityError
	var timeout *remote.TimeoutError
	switch {
	case errors.Is(err, errVerificationFailed):
		b.Code = codeVerificationFailed
	case errors.Is(err, errDenied):
		b.Code = codeDenied
	case errors.As(err, &timeout):
		b.Code = codeTimeout
		b.Hint = fmt.Sprintf("check that %s is up and reachable; if it is only slow, raise %s (now %s)", timeout.Host, timeoutFlags[timeout.Setting], timeout.Limit)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		b.Code = codeUnauthorized
		b.Hint = "the registry wants credentials: run `mkt login REGISTRY` or pass --registry-config"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		b.Code = codeUnauthorized
		b.Hint = "the registry refused the credentials: run `mkt login REGISTRY` again"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden:
		b.Code = codeForbidden
		b.Hint = "the credentials lack permission for this repository"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound, errors.Is(err, errdef.ErrNotFound):
		b.Code = codeNotFound
		b.Hint = "check the reference for a typo: REGISTRY/PUBLISHER/NAME:VERSION (`mkt search QUERY --index URL` lists what is published)"
	case errors.As(err, &unknownCA):
		b.Code = codeUntrustedCertificate
		b.Hint = "the registry's certificate is not trusted: pass --ca-file CA.pem (or --insecure for a throwaway registry)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		b.Code = codePlainHTTP
		b.Hint = "the registry speaks plain HTTP: add --plain-http"
	case errors.Is(err, artifact.ErrNotExtension):
		b.Code = codeNotExtension
		b.Hint = "mkt pulls Marketplace extensions only; use oras for other artifacts"
	case errors.Is(err, artifact.ErrUnsafeContent):
		b.Code = codeUnsafeContent
		b.Hint = "nothing was written; report the artifact to its publisher"
	}
	return b
}

// message is err's text with a registry's error response told in words:
// oras-go prints a response's detail as a Go map (`map[name:acme/cmr]`),
// which says nothing to a person, so the detail is left out.
func message(err error) string {
	msg := err.Error()
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		msg = strings.Replace(msg, resp.Error(), registryResponse(resp), 1)
	}
	return msg
}

// registryResponse says what a registry answered: which repository and
// what it said about it, without the raw detail.
func registryResponse(resp *errcode.ErrorResponse) string {
	what := "registry"
	if resp.URL != nil {
		what = resp.URL.Host
		if repo, ok := repositoryOf(resp.URL); ok {
			what += " (repository " + repo + ")"
		}
	}
	var said []string
	for _, e := range resp.Errors {
		switch e.Code {
		case errcode.ErrorCodeNameUnknown:
			said = append(said, "no such repository")
		case errcode.ErrorCodeManifestUnknown:
			said = append(said, "no such tag or digest")
		default:
			if e.Message != "" {
				said = append(said, e.Message)
			} else {
				said = append(said, strings.ToLower(strings.ReplaceAll(e.Code, "_", " ")))
			}
		}
	}
	if len(said) == 0 {
		said = append(said, http.StatusText(resp.StatusCode))
	}
	return fmt.Sprintf("%s answered %d: %s", what, resp.StatusCode, strings.Join(said, "; "))
}

// repositoryOf reads the repository out of a distribution API URL
// (/v2/REPOSITORY/manifests|blobs|tags|referrers/…).
func repositoryOf(u *url.URL) (string, bool) {
	p, ok := strings.CutPrefix(u.Path, "/v2/")
	if !ok {
		return "", false
	}
	for _, sep := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(p, sep); i > 0 {
			return p[:i], true
		}
	}
	return "", false
}

// timeoutFlags name the global flag behind each RemoteOptions timeout.
var timeoutFlags = map[string]string{
	"ConnectTimeout": "--connect-timeout",
	"Timeout":        "--timeout",
	"RequestTimeout": "--request-timeout",
}

// isCobraUsageError recognises the errors cobra makes itself for bad
// invocations (it has no types for them).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "required flag") ||
		strings.HasPrefix(msg, "invalid argument") || strings.HasPrefix(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "bad flag syntax")
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
