package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve/snapshot"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
	codeNotPromoted          = "notPromoted"
	codeNotFound             = "notFound"
	codeUnauthorized         = "unauthorized"
	codeForbidden            = "forbidden"
	codeTimeout              = "timeout"
	codeUnreachable          = "unreachable"
	codeUntrustedCertificate = "untrustedCertificate"
	codePlainHTTP            = "plainHTTP"
	codeNotExtension         = "notExtension"
	codeUnsafeContent        = "unsafeContent"
	codeNotInstalled         = "notInstalled"
	codeAuditFailed          = "auditFailed"
	codeRejected             = "rejected"
	codeSnapshotRefused      = "snapshotRefused"
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

// usedWrongly is a usage error with the usage line of its command, shown
// as what to do instead.
type usedWrongly struct {
	error
	usage string
}

func (e usedWrongly) Unwrap() error { return e.error }

// withUsage gives a usage error of cmd its usage line, once.
func withUsage(err error, cmd *cobra.Command) error {
	var ue usageError
	var uw usedWrongly
	if errors.As(err, &ue) && !errors.As(err, &uw) {
		return usedWrongly{err, cmd.UseLine()}
	}
	return err
}

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// describeError is the one place that knows how errors read to people and
// to scripts: the message, the code, the hint and the exit status of err.
func describeError(err error) *errorBody {
	b := &errorBody{Code: codeFailed, Message: message(err), ExitCode: exitFailure}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		b.Code, b.ExitCode = codeUsage, exitUsage
		b.Hint = "run `mkt help` or `mkt COMMAND --help` for the usage"
		var uw usedWrongly
		if errors.As(err, &uw) {
			b.Hint = "usage: " + uw.usage + " (`--help` says more)"
		}
		return b
	}
	var notInstalled *notInstalledError
	var unknownCA x509.UnknownAuthorityError
	var timeout *remote.TimeoutError
	var pathErr *fs.PathError
	status := 0
	if a := registryAnswerOf(err); a != nil {
		status = a.status
	}
	switch {
	case errors.As(err, &notInstalled):
		b.Code = codeNotInstalled
		b.Hint = installHint()
	case errors.Is(err, errVerificationFailed):
		b.Code = codeVerificationFailed
		b.Hint = "the failed checks say what is missing: a signature (`mkt sign REF --key KEY`) or an attestation (`mkt attest`) by one of the trusted keys, or check that --key names the right public key"
	case errors.Is(err, marketplace.ErrNotPromoted):
		b.Code = codeNotPromoted
		b.Hint = "nothing was copied; the decision's failed checks say what the stage still needs (a pipeline review: mkt review check --attest; approvals: mkt review approve)"
	case errors.Is(err, marketplace.ErrAuditFailed):
		b.Code = codeAuditFailed
		b.Hint = "remove (or reinstall) each extension marked GO; the reasons say which check refused it, and the operator's control list says why"
	case errors.Is(err, control.ErrUnsigned):
		b.Code = codeVerificationFailed
		b.Hint = "the list is not signed by a key given: check --key (or the policy's controlList.keys) names the operator's public key; a list pushed by anyone else is refused"
	case errors.Is(err, errDenied):
		b.Code = codeDenied
		b.Hint = "the decision's failed checks say which rule refused it and why; the policy file decides what is trusted"
	case errors.Is(err, serverapi.ErrRejected):
		b.Code = codeRejected
		b.Hint = "each blocking finding says where it is and what to do; docs/review.md explains every check and how to pass it"
	case errors.Is(err, snapshot.ErrRefused):
		b.Code = codeSnapshotRefused
		switch {
		case errors.Is(err, snapshot.ErrRollback):
			b.Hint = "this client already trusted a newer snapshot: use the newest (an older one may hide a yank or a fix); the cache of trusted metadata is --snapshot-cache"
		case errors.Is(err, snapshot.ErrFreeze):
			b.Hint = "ask the operator for a fresh snapshot (`mkt index snapshot`, before the timestamp expires) and copy it again"
		case errors.Is(err, snapshot.ErrSignature):
			b.Hint = "check that --snapshot-root is the root.json of the operator who wrote this snapshot"
		default:
			b.Hint = "the snapshot was altered after signing, or mixes files of two snapshots: copy it again from the operator's registry"
		}
	case errors.As(err, &timeout):
		b.Code = codeTimeout
		b.Hint = fmt.Sprintf("check that %s is up and reachable; if it is only slow, raise %s (now %s)", timeout.Host, timeoutFlags[timeout.Setting], timeout.Limit)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		b.Code = codeUnauthorized
		b.Hint = "the registry wants credentials: run `mkt login REGISTRY` or pass --registry-config"
	case errors.Is(err, client.ErrUnauthorized):
		b.Code = codeUnauthorized
		b.Hint = "the index refused the token in MKT_INDEX_TOKEN (unknown, revoked or expired): ask the index's operator for a new one (`mkt index token create`)"
	case errors.Is(err, client.ErrForbidden):
		b.Code = codeForbidden
		b.Hint = "the token in MKT_INDEX_TOKEN lacks the role this needs (impact: the operator's admin, or a publisher of the version's own tenant)"
	case status == http.StatusUnauthorized:
		b.Code = codeUnauthorized
		b.Hint = "the registry refused the credentials: run `mkt login REGISTRY` again"
	case status == http.StatusForbidden:
		b.Code = codeForbidden
		b.Hint = "the credentials lack permission for this repository"
	case status == http.StatusNotFound, errors.Is(err, errdef.ErrNotFound):
		b.Code = codeNotFound
		b.Hint = "check the name and version for a typo (`mkt search QUERY --index URL` lists what is published)"
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
	case errors.As(err, &pathErr) && filepath.Base(pathErr.Path) == "extension.yaml" && errors.Is(err, fs.ErrNotExist):
		b.Hint = "an extension directory holds an extension.yaml: write one with `mkt init DIR --kind KIND --name PUBLISHER/NAME`"
	case errors.Is(err, syscall.ECONNREFUSED):
		b.Code = codeUnreachable
		b.Hint = "nothing listens at that address: check the host and port, and that the service is running"
	case errors.Is(err, syscall.EADDRINUSE):
		b.Hint = "another process listens on that address: pick another (port 0 picks a free one)"
	}
	return b
}

// message is err's text with a registry's error response told in words.
// Both OCI stacks print a response's detail as a Go value (oras-go
// `map[name:acme/cmr]`, go-containerregistry `unknown tag=0.1.0`), which
// says nothing to a person, so the answer is retold without it.
func message(err error) string {
	msg := err.Error()
	if a := registryAnswerOf(err); a != nil {
		msg = strings.Replace(msg, a.raw, a.String(), 1)
	}
	return msg
}

// registryAnswer is a registry's error response, from either OCI stack.
type registryAnswer struct {
	raw    string // the error's own text, to replace
	url    *url.URL
	status int
	codes  []string // the distribution API's error codes (NAME_UNKNOWN)
	texts  []string // and their messages
}

func registryAnswerOf(err error) *registryAnswer {
	var oras *errcode.ErrorResponse
	var ggcr *transport.Error
	switch {
	case errors.As(err, &oras):
		a := &registryAnswer{raw: oras.Error(), url: oras.URL, status: oras.StatusCode}
		for _, e := range oras.Errors {
			a.codes, a.texts = append(a.codes, e.Code), append(a.texts, e.Message)
		}
		return a
	case errors.As(err, &ggcr):
		a := &registryAnswer{raw: ggcr.Error(), status: ggcr.StatusCode}
		if ggcr.Request != nil {
			a.url = ggcr.Request.URL
		}
		for _, d := range ggcr.Errors {
			a.codes, a.texts = append(a.codes, string(d.Code)), append(a.texts, d.Message)
		}
		return a
	}
	return nil
}

// String says who answered what: the registry, the repository when the URL
// names one, the status and what the codes mean.
func (a *registryAnswer) String() string {
	who := "the registry"
	if a.url != nil {
		who = a.url.Host
		if repo, ok := repositoryOf(a.url); ok {
			who += " (repository " + repo + ")"
		}
	}
	var said []string
	for i, code := range a.codes {
		switch code {
		case errcode.ErrorCodeNameUnknown:
			said = append(said, "no such repository")
		case errcode.ErrorCodeManifestUnknown:
			said = append(said, "no such tag or digest")
		default:
			if a.texts[i] != "" {
				said = append(said, a.texts[i])
			} else {
				said = append(said, strings.ToLower(strings.ReplaceAll(code, "_", " ")))
			}
		}
	}
	if len(said) == 0 {
		said = append(said, strings.ToLower(http.StatusText(a.status)))
	}
	return fmt.Sprintf("%s answered %d: %s", who, a.status, strings.Join(said, "; "))
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

// timeoutFlags name the global flag behind each remote.Options timeout.
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

// exactArgs, rangeArgs and minArgs check the number of arguments and say,
// as a usage error (exit 2), what the command takes.
func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

func minArgs(n int) cobra.PositionalArgs { return rangeArgs(n, -1) }

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && (hi < 0 || len(args) <= hi) {
			return nil
		}
		var want string
		switch {
		case hi == 0:
			want = "no arguments"
		case lo == hi:
			want = fmt.Sprintf("%d %s", lo, plural(lo, "argument"))
		case hi < 0:
			want = fmt.Sprintf("at least %d %s", lo, plural(lo, "argument"))
		default:
			want = fmt.Sprintf("%d to %d arguments", lo, hi)
		}
		return usedWrongly{usageError{fmt.Errorf("%s takes %s, got %d", cmd.CommandPath(), want, len(args))}, cmd.UseLine()}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
