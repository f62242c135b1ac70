package pgstore_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, or, when the test binary was started as one of
// the processes of a multi-process test, that process's role.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	if os.Getenv(urlEnv) == "" {
		// Skips are silent without -v: say it once, loud.
		fmt.Fprintf(os.Stderr, "pgstore: %s is not set, so the tests that need PostgreSQL fail under CI and are skipped otherwise; %s\n", urlEnv, howToRun)
	}
	goleak.VerifyTestMain(m)
}
