package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/connectsoft/marketplace/resolve"
)

// Codes of the index API's error answers ({"error": {"code", "message"}}):
// the server picks one from the type of the error, never from its text, and
// the client turns it back into errors callers test with errors.Is.
const (
	CodeBadRequest   = "badRequest"   // 400: a parameter the caller got wrong
	CodeUnauthorized = "unauthorized" // 401: no, an unknown, a revoked or an expired token
	CodeForbidden    = "forbidden"    // 403: the token lacks the role
	CodeNotFound     = "notFound"     // 404: no such extension visible to the caller
	CodeNotPublished = "notPublished" // 404 from resolve: a name has no visible versions
	CodeUnresolvable = "unresolvable" // 422: no acceptable version, or conflicting requirements
	CodeInvalidEvent = "invalidEvent" // 422 (or per event in 207): a usage event refused, naming its field
	CodeInternal     = "internal"     // 500: logged on the server
)

// Sentinels an *APIError matches by its status, so that callers need not
// know the codes.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
)

// ErrorBody is the JSON document of every error answer of the API:
// {"error": {"code": …, "message": …}}, the shape and field names `mkt
// --format json` prints its errors in (DESIGN §7), so that a script reads
// one kind of error from both.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: a code chosen from the error's type
// and a message for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// UnmarshalJSON also reads the answers of an index from before the codes
// and the object, {"error": "message", "code": "…"}: an older index still
// answers with a status and a message.
func (b *ErrorBody) UnmarshalJSON(data []byte) error {
	var doc struct {
		Error json.RawMessage `json:"error"`
		Code  string          `json:"code"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	var message string
	if json.Unmarshal(doc.Error, &message) == nil {
		b.Error = ErrorDetail{Code: doc.Code, Message: message}
		return nil
	}
	var d ErrorDetail
	if len(doc.Error) > 0 {
		if err := json.Unmarshal(doc.Error, &d); err != nil {
			return err
		}
	}
	b.Error = d
	return nil
}

// APIError is an error answer of the index: its status, its code and its
// message. errors.Is matches it against ErrBadRequest, ErrUnauthorized,
// ErrForbidden and ErrNotFound by status, and against
// resolve.ErrUnresolvable (and resolve.ErrNotPublished) when resolution
// failed, so that a resolution through an index fails like a local one.
type APIError struct {
	// URL is what was asked, without the query.
	URL     string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.unresolvable() {
		// The message names the reason: "cannot resolve acme/x: ...".
		return fmt.Sprintf("%s: %s", resolve.ErrUnresolvable, e.Message)
	}
	return fmt.Sprintf("index %s: %d %s", e.URL, e.Status, e.Message)
}

func (e *APIError) unresolvable() bool {
	return e.Code == CodeUnresolvable || e.Code == CodeNotPublished
}

// Is matches the sentinels of the status and code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case resolve.ErrUnresolvable:
		return e.unresolvable()
	case resolve.ErrNotPublished:
		return e.Code == CodeNotPublished
	}
	return false
}

// CodeOf is the code an index answers for a status, for answers of an
// index that predates codes.
func CodeOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusUnprocessableEntity:
		return CodeUnresolvable
	}
	return CodeInternal
}
