package redisstore

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"golang.org/x/oauth2"
)

// record is the JSON form of a token in Redis.
type record struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	IDToken      string    `json:"id_token,omitempty"`
}

// encode renders tok as the stored JSON.
func encode(tok *oauth2.Token) ([]byte, error) {
	r := record{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
	}
	if id, ok := tok.Extra("id_token").(string); ok {
		r.IDToken = id
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Only an Expiry outside the years 0-9999 gets here; the error
		// names no token.
		return nil, errors.New("redisstore: the token cannot be encoded (invalid expiry)")
	}
	return b, nil
}

// decode parses the stored JSON. Its errors never quote the input, which
// holds tokens.
func decode(b []byte) (*oauth2.Token, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, errors.New("redisstore: the stored value is not a token in JSON")
	}
	if r.AccessToken == "" && r.RefreshToken == "" {
		return nil, errors.New("redisstore: the stored token has neither an access nor a refresh token")
	}
	tok := &oauth2.Token{
		AccessToken:  r.AccessToken,
		TokenType:    r.TokenType,
		RefreshToken: r.RefreshToken,
		Expiry:       r.Expiry,
	}
	if r.IDToken != "" {
		tok = tok.WithExtra(map[string]any{"id_token": r.IDToken})
	}
	return tok, nil
}

// refreshLifetime returns the refresh token's lifetime that the token
// endpoint announced, if it did: "refresh_token_expires_in" (as GitHub and
// Microsoft send it) or "refresh_expires_in" (Keycloak), in seconds. Zero
// and negative values mean "unknown" (Keycloak sends 0 for offline tokens).
func refreshLifetime(tok *oauth2.Token) time.Duration {
	for _, name := range []string{"refresh_token_expires_in", "refresh_expires_in"} {
		// A lifetime past a century is taken as "unknown" too, which also
		// keeps the conversion below in range.
		if secs := number(tok.Extra(name)); secs > 0 && secs < 100*365*24*3600 {
			return time.Duration(secs * float64(time.Second))
		}
	}
	return 0
}

// number reads an extra field that JSON or a form gave as a number.
func number(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	case json.Number:
		f, _ := v.Float64()
		return f
	case string:
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	return 0
}
