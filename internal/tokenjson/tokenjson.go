// Package tokenjson is the JSON form in which the shared stores
// (store/redisstore, store/pgstore) keep a token pair: one form for both, so
// that a token can move from one to the other. Its errors never quote the
// input, which holds tokens.
package tokenjson

import (
	"encoding/json"
	"errors"
	"time"

	"golang.org/x/oauth2"
)

// record is the JSON form of a token.
type record struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	IDToken      string    `json:"id_token,omitempty"`
}

// Encode renders tok, with its "id_token" extra if it has one.
func Encode(tok *oauth2.Token) ([]byte, error) {
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
		return nil, errors.New("the token cannot be encoded (invalid expiry)")
	}
	return b, nil
}

// Decode parses what Encode wrote. A token needs an access token, a refresh
// token or both.
func Decode(b []byte) (*oauth2.Token, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, errors.New("the stored value is not a token in JSON")
	}
	if r.AccessToken == "" && r.RefreshToken == "" {
		return nil, errors.New("the stored token has neither an access nor a refresh token")
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
