package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seamlessauth/bearer/internal/ci"
	"github.com/stretchr/testify/require"
)

// nodeServer is a Node.js server script run as a child process of the
// test. It speaks JSON lines: it prints {"ready":true,"port":N} on stdout
// once it listens on 127.0.0.1:N, then answers each command line written
// to its stdin with one JSON line. It exits when its stdin closes, so it
// cannot outlive the test binary, and the test's cleanup waits for it.
type nodeServer struct {
	port int

	stdin   *bufio.Writer
	closeIn func() error
	replies chan map[string]any // the JSON lines after the ready line
	exited  chan error          // cmd.Wait's result, once stdout is drained

	cmdMu sync.Mutex // one command at a time, so that replies come in order

	logMu sync.Mutex
	log   bytes.Buffer // stderr and any stdout line that is not JSON
}

// nodeOrSkip returns the node binary, or skips the test when it is missing
// (and fails it under CI, which installs it: see .ci/run).
func nodeOrSkip(t *testing.T, dir string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		if _, err = os.Stat(filepath.Join(dir, "node_modules")); err != nil {
			err = fmt.Errorf("%s has no node_modules: run `npm ci` there (.ci/run does)", dir)
		}
	} else {
		err = fmt.Errorf("no Node.js: install nodejs and npm (.ci/run does): %w", err)
	}
	if err != nil {
		if ci.Running() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return node
}

// startNode runs `node script` in dir with env added to the test's own
// environment, and returns once the script says it is ready.
func startNode(t *testing.T, dir, script string, env ...string) *nodeServer {
	t.Helper()
	node := nodeOrSkip(t, dir)
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	s := &nodeServer{replies: make(chan map[string]any, 1), exited: make(chan error, 1)}
	cmd.Stderr = (*lockedWriter)(s)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s.stdin, s.closeIn = bufio.NewWriter(in), in.Close

	ready := make(chan int, 1)
	go s.read(cmd, out, ready)
	t.Cleanup(func() { s.stop(t, cmd) })

	select {
	case s.port = <-ready:
	case err := <-s.exited:
		s.exited <- err // for stop
		t.Fatalf("node %s exited before it was ready (%v):\n%s", script, err, s.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s was not ready within 30s:\n%s", script, s.output())
	}
	return s
}

// read hands the ready line's port and every later JSON line over, keeps
// the rest for the log, and reports the exit once stdout has closed.
func (s *nodeServer) read(cmd *exec.Cmd, out io.Reader, ready chan<- int) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seenReady := false
	for sc.Scan() {
		var msg map[string]any
		if json.Unmarshal(sc.Bytes(), &msg) != nil {
			(*lockedWriter)(s).Write(append(sc.Bytes(), '\n'))
			continue
		}
		if !seenReady {
			if port, ok := msg["port"].(float64); ok && msg["ready"] == true {
				seenReady = true
				ready <- int(port)
				continue
			}
		}
		select {
		case s.replies <- msg:
		default: // an answer nobody asked for: kept in the log, so that the reader never blocks
			(*lockedWriter)(s).Write(append(sc.Bytes(), '\n'))
		}
	}
	s.exited <- cmd.Wait()
}

// command sends one command line and returns the server's answer.
func (s *nodeServer) command(t *testing.T, line string) map[string]any {
	t.Helper()
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	_, err := s.stdin.WriteString(line + "\n")
	if err == nil {
		err = s.stdin.Flush()
	}
	require.NoError(t, err, "sending %q", line)
	select {
	case msg := <-s.replies:
		require.Nil(t, msg["error"], "%q", line)
		name, _, _ := strings.Cut(line, " ")
		require.Equal(t, name, msg["done"], "the answer to %q is another's", line)
		return msg
	case err := <-s.exited:
		s.exited <- err // for stop
		t.Fatalf("the server exited (%v) before it answered %q:\n%s", err, line, s.output())
		return nil
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer to %q:\n%s", line, s.output())
		return nil
	}
}

// stop closes stdin, on which the script exits, and waits for it; a script
// that does not exit within 5 s is killed.
func (s *nodeServer) stop(t *testing.T, cmd *exec.Cmd) {
	s.cmdMu.Lock()
	s.closeIn()
	s.cmdMu.Unlock()
	var err error
	select {
	case err = <-s.exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		err = errors.Join(errors.New("killed: it did not exit when its stdin closed"), <-s.exited)
	}
	if err != nil {
		t.Errorf("node: %v\n%s", err, s.output())
	} else if t.Failed() {
		t.Logf("node's output:\n%s", s.output())
	}
}

func (s *nodeServer) output() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return strings.TrimSpace(s.log.String())
}

// lockedWriter writes to a nodeServer's log under its lock.
type lockedWriter nodeServer

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	return w.log.Write(p)
}
