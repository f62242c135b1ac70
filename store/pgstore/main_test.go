package pgstore_test

import (
	"testing"

	"github.com/seamlessauth/bearer/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m, harness) }
