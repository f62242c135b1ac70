package dpop

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/internal/dpopcheck"
)

// decoded is a proof whose signature verified.
type decoded = dpopcheck.Proof

// verifyProof checks proof the way a server does (internal/dpopcheck, which
// shares no code with this package) and fails the test if it is not a valid
// proof.
func verifyProof(t testing.TB, proof string) decoded {
	t.Helper()
	p, err := dpopcheck.Verify(proof)
	require.NoError(t, err)
	return *p
}
