// Package storetest holds the tests that every shared store module runs
// against a real server: a fleet of processes on one store, a lock holder
// killed in the middle of a refresh, and two identities kept apart. Each
// store module (store/redisstore, store/pgstore) describes its store in a
// [Config] and calls them from thin test functions of its own:
//
//	func TestMain(m *testing.M) { storetest.Main(m, harness) }
//	func TestLockHolderDies(t *testing.T) { storetest.LockHolderDies(t, harness) }
//
// The processes of the fleet and the lock holder are real: the test binary
// starts itself again, with [Main] giving the child process its role from
// the environment, so that a lock lives in one process and dies with it.
//
// Each test works in a space of its own on the server (a Redis key prefix,
// a PostgreSQL table), removed at its end. Without the server, named by
// Config.ServerEnv, the tests skip, or fail when CI is set.
package storetest
