// Package ci tells the tests whether they run under continuous
// integration, where a server or tool that a test needs and does not find
// is a failure rather than a reason to skip.
package ci

import "os"

// Running reports whether CI is set to anything but "", "false" or "0".
func Running() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}
