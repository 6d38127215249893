package client_test

import (
	"encoding/json"
	"testing"

	"github.com/connectsoft/marketplace/index/client"
)

// The API answers {"error":{"code","message"}}, the shape mkt prints; an
// older index answered {"error":"message","code":"…"}, which still reads.
func TestErrorBodyReadsBothShapes(t *testing.T) {
	for _, tc := range []struct{ doc, code, message string }{
		{`{"error":{"code":"notFound","message":"no such extension"}}`, "notFound", "no such extension"},
		{`{"error":"token revoked","code":"unauthorized"}`, "unauthorized", "token revoked"},
		{`{"error":"internal error"}`, "", "internal error"},
		{`{}`, "", ""},
	} {
		var b client.ErrorBody
		if err := json.Unmarshal([]byte(tc.doc), &b); err != nil || b.Error.Code != tc.code || b.Error.Message != tc.message {
			t.Errorf("%s: %+v %v", tc.doc, b, err)
		}
	}
	out, _ := json.Marshal(client.ErrorBody{Error: client.ErrorDetail{Code: "badRequest", Message: "kind: no such kind"}})
	if string(out) != `{"error":{"code":"badRequest","message":"kind: no such kind"}}` {
		t.Errorf("written as %s", out)
	}
	var bad client.ErrorBody
	if err := json.Unmarshal([]byte(`{"error":[1]}`), &bad); err == nil {
		t.Error("an error that is neither a string nor an object was read")
	}
}
