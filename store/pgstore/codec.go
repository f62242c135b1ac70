package pgstore

import (
	"fmt"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/internal/tokenjson"
)

// encode renders tok as the JSON of the token column: the form redisstore
// keeps too, so that a token can be moved between the two.
func encode(tok *oauth2.Token) (string, error) {
	b, err := tokenjson.Encode(tok)
	if err != nil {
		return "", fmt.Errorf("pgstore: %w", err)
	}
	return string(b), nil
}

// decode parses the token column. Its errors never quote the input, which
// holds tokens.
func decode(b []byte) (*oauth2.Token, error) {
	tok, err := tokenjson.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return tok, nil
}
