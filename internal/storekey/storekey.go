// Package storekey bounds the DPoP key that the stores keep beside the
// token (store.KeyStore), one rule for the root stores and the nested ones.
package storekey

import (
	"errors"
	"fmt"
)

// Max bounds a stored key (an RSA-4096 PKCS #8 PEM is about 3.3 KB).
const Max = 16 << 10

// Check returns an error if key may not be saved: it is empty or larger
// than Max.
func Check(key []byte) error {
	switch {
	case len(key) == 0:
		return errors.New("the key is empty")
	case len(key) > Max:
		return fmt.Errorf("the key is larger than %d bytes", Max)
	}
	return nil
}
