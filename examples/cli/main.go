// Cli is a command-line tool whose login survives between runs: each run is
// a new process that finds the token pair in a file (store.NewFile),
// refreshes it when it has to, and writes the rotated refresh token back,
// so that the next run starts from the newest one.
//
//	go run ./examples/cli [-file path]
//
// Run like that, it plays a user at a shell: it starts an OAuth2 server and
// API (bearertest, on 127.0.0.1) and runs itself as a separate
// process several times, as "cli whoami", "cli login", "cli logout". The
// token file is in a new temporary directory, removed at the end, unless
// -file names one. No token is printed.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/seamlessauth/bearer/bearertest"
)

func main() {
	log.SetFlags(0)
	file := flag.String("file", "", "the token file (default: token.json in a new temporary directory)")
	server := flag.String("server", "", "the server's base URL; set by the session that runs the commands")
	flag.Parse()
	if *server != "" {
		os.Exit(command(*server, *file, flag.Args()))
	}
	session(*file)
}

// session plays the user: it starts the server and runs the commands, each
// in a process of its own.
func session(path string) {
	if path == "" {
		dir, err := os.MkdirTemp("", "bearer-cli-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "token.json")
	}
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: time.Hour, Rotate: true, ReuseDetection: true})
	defer srv.Close()
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("token file: %s\n", path)

	run := func(args ...string) {
		fmt.Printf("\n$ cli %s\n", args[0])
		cmd := exec.Command(self, append([]string{"-server", srv.URL, "-file", path}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Printf("(exit: %v)\n", err)
		}
	}
	run("whoami")
	run("login")
	run("whoami")
	fmt.Println("\n(meanwhile the server revokes every access token)")
	srv.RevokeAccessTokens()
	run("whoami")
	fmt.Println("\n(the server revokes them again: this refresh must use the rotated refresh")
	fmt.Println(" token that the last run saved; the old one would be reuse, and end the session)")
	srv.RevokeAccessTokens()
	run("whoami")
	run("logout")
	run("whoami")

	st := srv.Stats()
	fmt.Printf("\nserver: logins %d, refreshes %d, reuse detections %d\n", st.Issued-st.Refreshes, st.Refreshes, st.ReuseDetections)
}
