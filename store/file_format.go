package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// The token file is a JSON object that names its format and version, so
// that a file of another format, or of a later version, is recognised and
// left alone instead of being misread or overwritten.
const (
	fileFormatName    = "bearer-token"
	fileFormatVersion = 1
	maxFileSize       = 1 << 20 // a token file is a few kilobytes; more is not ours
)

// defaultExtras are the token-response fields that File keeps besides the
// access and refresh tokens: the OpenID Connect ID token and the granted
// scope.
var defaultExtras = []string{"id_token", "scope"}

// fileToken is version 1 of the token file.
type fileToken struct {
	Format       string         `json:"format"`
	Version      int            `json:"version"`
	AccessToken  string         `json:"access_token"` // empty: only a refresh token, not refreshed yet
	TokenType    string         `json:"token_type,omitempty"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	Expiry       *time.Time     `json:"expiry,omitempty"` // absent: the token does not expire
	Extra        map[string]any `json:"extra,omitempty"`
	Cleared      bool           `json:"cleared,omitempty"` // a tombstone: Clear was called, no token
}

// errTombstone is what decodeToken says of a file that Clear wrote.
var errTombstone = clearedError{}

// tombstone is the content Clear leaves: no token, and the fact that it was
// cleared, so that the other holders of the file end their sessions too.
func tombstone() []byte {
	data, _ := json.Marshal(fileToken{Format: fileFormatName, Version: fileFormatVersion, Cleared: true})
	return append(data, '\n')
}

// encodeToken renders tok as a version 1 token file, keeping the extras
// named in extras that tok has.
func encodeToken(tok *oauth2.Token, extras []string) ([]byte, error) {
	ft := fileToken{
		Format:       fileFormatName,
		Version:      fileFormatVersion,
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
	}
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC()
		ft.Expiry = &e
	}
	for _, k := range extras {
		if v := tok.Extra(k); v != nil && v != "" {
			if ft.Extra == nil {
				ft.Extra = make(map[string]any, len(extras))
			}
			ft.Extra[k] = v
		}
	}
	data, err := json.MarshalIndent(ft, "", "  ")
	if err != nil {
		// Only an extra of a type JSON cannot hold gets here. The message
		// names the type, never a value.
		return nil, fmt.Errorf("encoding the token: %w", err)
	}
	return append(data, '\n'), nil
}

// decodeToken parses a token file. Its errors say what is wrong in words
// that never quote the file's content, since that content is a token.
func decodeToken(data []byte) (*oauth2.Token, error) {
	if len(data) == 0 {
		return nil, errors.New("is empty")
	}
	if !json.Valid(data) {
		return nil, errors.New("is not valid JSON (truncated or corrupt)")
	}
	var head map[string]json.RawMessage
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, errors.New("is not a bearer token file (not a JSON object)")
	}
	var format string
	if err := json.Unmarshal(head["format"], &format); err != nil || format != fileFormatName {
		return nil, fmt.Errorf("is not a bearer token file (it has no \"format\": %q field)", fileFormatName)
	}
	var version int
	if err := json.Unmarshal(head["version"], &version); err != nil {
		return nil, errors.New("has no valid format version")
	}
	if version != fileFormatVersion {
		return nil, fmt.Errorf("has format version %d; this program reads version %d", version, fileFormatVersion)
	}
	var ft fileToken
	if err := json.Unmarshal(data, &ft); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("has a malformed %q field", te.Field)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return nil, errors.New(`has a malformed "expiry" field`)
		}
		return nil, errors.New("is malformed")
	}
	if ft.Cleared && ft.AccessToken == "" && ft.RefreshToken == "" {
		return nil, errTombstone
	}
	if ft.AccessToken == "" && ft.RefreshToken == "" {
		return nil, errors.New("has neither an access nor a refresh token")
	}
	tok := &oauth2.Token{
		AccessToken:  ft.AccessToken,
		TokenType:    ft.TokenType,
		RefreshToken: ft.RefreshToken,
	}
	if ft.Expiry != nil {
		// Saving writes the expiry in UTC, which must stay a four-digit year.
		if y := ft.Expiry.UTC().Year(); y < 1 || y > 9999 {
			return nil, errors.New(`has a malformed "expiry" field`)
		}
		tok.Expiry = *ft.Expiry
	}
	if len(ft.Extra) > 0 {
		tok = tok.WithExtra(ft.Extra)
	}
	return tok, nil
}
