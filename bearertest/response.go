package bearertest

import (
	"encoding/json"
	"net/http"
)

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status    int
	code      string
	desc      string
	challenge bool // add WWW-Authenticate: Basic (the client tried Basic, or sent nothing)
}

func invalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
}

func invalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.challenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="bearertest"`)
	}
	writeJSON(w, e.status, errorBody{Error: e.code, Description: e.desc})
}

// writeJSON answers v as JSON; like every token answer, it must not be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
