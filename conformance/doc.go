// Package conformance proves bearer against OAuth2 servers that its authors
// did not write. It is its own module so that the servers' dependencies
// never reach users of bearer.
//
// Everything is in the tests: each server runs in-process on loopback, a
// client logs in through the server's real authorization-code flow, and a
// bearer.Transport built on bearer.OAuth2 calls a protected resource that
// asks the server whether each token is valid. README.md lists the servers,
// the scenarios and where the servers depart from RFC 6749.
package conformance
