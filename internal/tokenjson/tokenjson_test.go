package tokenjson

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func TestRoundTrip(t *testing.T) {
	tests := []*oauth2.Token{
		{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Expiry: time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)},
		{RefreshToken: "rt-only"},
		(&oauth2.Token{AccessToken: "at"}).WithExtra(map[string]any{"id_token": "idt"}),
	}
	for _, tok := range tests {
		b, err := Encode(tok)
		require.NoError(t, err)
		got, err := Decode(b)
		require.NoError(t, err)
		assert.Equal(t, tok.AccessToken, got.AccessToken)
		assert.Equal(t, tok.RefreshToken, got.RefreshToken)
		assert.Equal(t, tok.TokenType, got.TokenType)
		assert.True(t, tok.Expiry.Equal(got.Expiry))
		assert.Equal(t, tok.Extra("id_token"), got.Extra("id_token"))
	}
}

func TestErrorsQuoteNothing(t *testing.T) {
	for _, in := range []string{`{"access_token":`, `{"token_type":"secret-value"}`, `"secret-value"`} {
		_, err := Decode([]byte(in))
		require.Error(t, err)
		assert.False(t, strings.Contains(err.Error(), "secret-value"))
	}
	_, err := Encode(&oauth2.Token{AccessToken: "secret-value", Expiry: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret-value")
}
