package pgstore

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// poolTries bounds the statements sent through the pool for one call: after
// a server restart, each idle connection of the pool fails once.
const poolTries = 4

// onPool runs fn on pool, again while it fails because a connection was
// lost. Every statement of a Store may be sent twice: Load reads, and a
// write that already went through matches the row it left (see New).
func onPool(ctx context.Context, pool *pgxpool.Pool, fn func(querier) error) error {
	var err error
	for range poolTries {
		if err = fn(pool); err == nil || !connectionLost(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// connectionLost reports whether err means that the connection failed,
// rather than that the server refused the statement.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08, connection exception; class 57P, the server shutting
		// down or the backend terminated.
		return len(pgErr.Code) == 5 && (pgErr.Code[:2] == "08" || pgErr.Code[:3] == "57P")
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
