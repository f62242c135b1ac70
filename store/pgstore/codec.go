package pgstore

import (
	"encoding/json"
	"errors"
	"time"

	"golang.org/x/oauth2"
)

// record is the JSON form of a token in the token column. It is the form
// redisstore uses, so that a token can be moved between the two.
type record struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	IDToken      string    `json:"id_token,omitempty"`
}

// encode renders tok as the stored JSON.
func encode(tok *oauth2.Token) (string, error) {
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
		return "", errors.New("pgstore: the token cannot be encoded (invalid expiry)")
	}
	return string(b), nil
}

// decode parses the stored JSON. Its errors never quote the input, which
// holds tokens.
func decode(b []byte) (*oauth2.Token, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, errors.New("pgstore: the stored value is not a token in JSON")
	}
	if r.AccessToken == "" && r.RefreshToken == "" {
		return nil, errors.New("pgstore: the stored token has neither an access nor a refresh token")
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
