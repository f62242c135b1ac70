package redisstore_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/internal/storetest"
	"github.com/seamlessauth/bearer/store/redisstore"
)

// newClient returns a client of the test Redis server, closed at the end of
// the test.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	c, err := connect(t.Context(), harness.Addr(t))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a key prefix of its own for one test, and deletes the
// test's keys at its end.
func testPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	return storetest.NewSpace(t, server{c})
}

// newStore returns a Store for identity under the test's prefix.
func newStore(t testing.TB, c redis.UniversalClient, prefix, identity string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, identity, append([]redisstore.Option{redisstore.WithPrefix(prefix)}, opts...)...)
	require.NoError(t, err)
	return s
}

// tokenKey and lockKey spell the documented key scheme.
func tokenKey(prefix, identity string) string { return prefix + "{" + identity + "}:token" }
func lockKey(prefix, identity string) string  { return prefix + "{" + identity + "}:lock" }

// lossyProxy is a TCP proxy on loopback between go-redis and the test Redis
// server that loses one reply: the first command naming its key that Redis
// carries out (its reply is not an error) is forwarded, and then the
// client's connection is cut instead of relaying the reply, as a network
// fault would cut it after the request got through. go-redis then sends the
// command again on a new connection.
type lossyProxy struct {
	ln     net.Listener
	target string
	key    []byte

	lost chan struct{} // closed when the reply has been dropped
	once sync.Once

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newLossyProxy starts a lossyProxy to target for the command that names
// key. It is stopped at the end of the test.
func newLossyProxy(t testing.TB, target, key string) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &lossyProxy{ln: ln, target: target, key: []byte(key), lost: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.stop)
	return p
}

// addr is where go-redis should connect.
func (p *lossyProxy) addr() string { return p.ln.Addr().String() }

// dropped reports whether the proxy has lost the reply.
func (p *lossyProxy) dropped() bool {
	select {
	case <-p.lost:
		return true
	default:
		return false
	}
}

func (p *lossyProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *lossyProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // stopped
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() {
			p.relay(client, server)
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
			client.Close()
			server.Close()
		})
	}
}

// relay passes commands from client to server and each reply back, one at
// a time, until either side closes or the reply is dropped.
func (p *lossyProxy) relay(client, server net.Conn) {
	fromClient, fromServer := bufio.NewReader(client), bufio.NewReader(server)
	for {
		cmd, err := readRESP(fromClient)
		if err != nil {
			return
		}
		if _, err := server.Write(cmd); err != nil {
			return
		}
		reply, err := readRESP(fromServer)
		if err != nil {
			return
		}
		if bytes.Contains(cmd, p.key) && reply[0] != '-' && reply[0] != '!' && !p.dropped() {
			p.once.Do(func() { close(p.lost) })
			return // carried out, and the reply is lost with the connection
		}
		if _, err := client.Write(reply); err != nil {
			return
		}
	}
}

// readRESP reads one RESP2 or RESP3 value and returns its bytes.
func readRESP(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("not a RESP line: %q", line)
	}
	n, _ := strconv.Atoi(string(line[1 : len(line)-2]))
	var parts int // nested values that follow
	switch line[0] {
	case '$', '=', '!': // bulk string, verbatim string, bulk error
		if n < 0 {
			return line, nil
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		return append(line, body...), nil
	case '*', '~', '>': // array, set, push
		parts = n
	case '%': // map
		parts = 2 * n
	case '|': // attributes, then the value they describe
		parts = 2*n + 1
	}
	for range max(parts, 0) {
		v, err := readRESP(r)
		if err != nil {
			return nil, err
		}
		line = append(line, v...)
	}
	return line, nil
}
