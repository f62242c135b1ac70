package pgstore

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultTable is the table a [Store] and [Migrate] use unless
// [WithTable] names another.
const DefaultTable = "bearer_tokens"

// An Option changes a default of [New] or [Migrate].
type Option func(*options)

type options struct {
	table string
}

func defaultOptions() options { return options{table: DefaultTable} }

// WithTable replaces [DefaultTable] with name, which may be qualified by a
// schema ("auth.tokens"). Give [Migrate] and [New] the same name.
func WithTable(name string) Option {
	return func(o *options) { o.table = name }
}

// quotedTable returns the table name as an SQL identifier, quoted.
func quotedTable(name string) (string, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("the table name %q has more than a schema and a name", name)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsRune(p, 0) {
			return "", fmt.Errorf("the table name %q is empty or has an empty part", name)
		}
	}
	return pgx.Identifier(parts).Sanitize(), nil
}
