package bearertest

import "sync/atomic"

// Stats is a snapshot of a [Server]'s counters.
type Stats struct {
	TokenRequests   int64 // every request that reached /token or /refresh, faulted ones included
	Refreshes       int64 // successful refreshes, on either endpoint
	RefreshFailures int64 // refresh attempts the server answered with an error, client authentication included (injected faults are not)
	ReuseDetections int64 // retired refresh tokens presented while ReuseDetection is on
	Issued          int64 // token pairs issued by any grant or by Issue
	APIRequests     int64 // every request that reached the API, faulted ones included
	APIUnauthorized int64 // API answers of 401, injected ones included
	BasicAuth       int64 // token and revocation requests that presented client credentials with HTTP Basic, right or wrong
	BodyAuth        int64 // token and revocation requests that presented client_id (and client_secret) in the form body, right or wrong

	RevocationRequests int64 // every request that reached /revoke, faulted ones included
	Revocations        int64 // revocation requests answered 200, for a known token or not (RFC 7009 §2.2)

	DPoPProofs          int64 // DPoP proofs accepted, at the token endpoint and the API
	DPoPRejected        int64 // DPoP proofs refused as invalid_dpop_proof (bad signature or claims, a jti seen before, another key)
	DPoPNonceChallenges int64 // proofs answered with use_dpop_nonce (no nonce, or not the current one)
}

type counters struct {
	tokenRequests   atomic.Int64
	refreshes       atomic.Int64
	refreshFailures atomic.Int64
	reuseDetections atomic.Int64
	issued          atomic.Int64
	apiRequests     atomic.Int64
	apiUnauthorized atomic.Int64
	basicAuth       atomic.Int64
	bodyAuth        atomic.Int64

	revocationRequests atomic.Int64
	revocations        atomic.Int64

	dpopProofs          atomic.Int64
	dpopRejected        atomic.Int64
	dpopNonceChallenges atomic.Int64
}

// Stats returns a snapshot of the counters. Each counter is read atomically;
// the snapshot as a whole is not, while requests are in flight.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		TokenRequests:   c.tokenRequests.Load(),
		Refreshes:       c.refreshes.Load(),
		RefreshFailures: c.refreshFailures.Load(),
		ReuseDetections: c.reuseDetections.Load(),
		Issued:          c.issued.Load(),
		APIRequests:     c.apiRequests.Load(),
		APIUnauthorized: c.apiUnauthorized.Load(),
		BasicAuth:       c.basicAuth.Load(),
		BodyAuth:        c.bodyAuth.Load(),

		RevocationRequests: c.revocationRequests.Load(),
		Revocations:        c.revocations.Load(),

		DPoPProofs:          c.dpopProofs.Load(),
		DPoPRejected:        c.dpopRejected.Load(),
		DPoPNonceChallenges: c.dpopNonceChallenges.Load(),
	}
}
