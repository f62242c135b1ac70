// Package dpop makes the keys and proofs of OAuth 2.0 Demonstrating Proof of
// Possession (DPoP, RFC 9449): tokens bound to a key that the client holds,
// so that a stolen access or refresh token is of no use without the key.
//
// A [Key] signs the proofs (ES256 from [GenerateKey]; EdDSA and PS256 for
// keys given to [NewKey]). Give it to a bearer.Transport as Config.DPoP and
// every request that carries the token carries a new proof, every token
// request too; log in with [Key.Client] under oauth2.HTTPClient so that the
// first token is bound to the same key:
//
//	key, err := dpop.GenerateKey()
//	ctx = context.WithValue(ctx, oauth2.HTTPClient, key.Client(nil))
//	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
//	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(cfg), DPoP: key})
//	err = tr.SetToken(ctx, tok)
//
// A Key keeps the last nonce each server gave it (the DPoP-Nonce header of
// any response) and puts it in the next proofs to that server; a request
// that a server rejects for want of a fresh nonce is sent once more with it.
//
// The key must outlive the tokens bound to it: processes that share a token
// store must share the key. [LoadOrGenerate], [Save] and [Load] keep it in
// a store that can hold it ([store.KeyStore]: store.Memory, store.File,
// redisstore), beside the token: whoever can read the store can use both,
// so it is protected as the refresh token is (a file private to its owner,
// Redis behind its ACL and TLS). A key that never leaves a KMS or an HSM is
// shared by giving every process [NewKey] over the same crypto.Signer, and
// is stored nowhere.
package dpop
