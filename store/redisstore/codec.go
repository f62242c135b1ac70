package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/internal/tokenjson"
)

// encode renders tok as the stored JSON, the form pgstore keeps too.
func encode(tok *oauth2.Token) ([]byte, error) {
	b, err := tokenjson.Encode(tok)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	return b, nil
}

// decode parses the stored JSON. Its errors never quote the input, which
// holds tokens.
func decode(b []byte) (*oauth2.Token, error) {
	tok, err := tokenjson.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
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
