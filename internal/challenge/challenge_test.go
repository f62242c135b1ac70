package challenge

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type params = map[string]string

var parseTests = []struct {
	name  string
	value string
	want  []Challenge
}{
	{
		name:  "bearer with error",
		value: `Bearer realm="example", error="invalid_token", error_description="The access token expired"`,
		want: []Challenge{{Scheme: "Bearer", Params: params{
			"realm": "example", "error": "invalid_token", "error_description": "The access token expired",
		}}},
	},
	{
		name:  "basic then bearer",
		value: `Basic realm="a", Bearer realm="b", error="insufficient_scope", scope="read write"`,
		want: []Challenge{
			{Scheme: "Basic", Params: params{"realm": "a"}},
			{Scheme: "Bearer", Params: params{"realm": "b", "error": "insufficient_scope", "scope": "read write"}},
		},
	},
	{
		name:  "rfc 7235 example",
		value: `Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`,
		want: []Challenge{
			{Scheme: "Newauth", Params: params{"realm": "apps", "type": "1", "title": `Login to "apps"`}},
			{Scheme: "Basic", Params: params{"realm": "simple"}},
		},
	},
	{name: "scheme alone", value: `Bearer`, want: []Challenge{{Scheme: "Bearer"}}},
	{
		name:  "token value and lower-case scheme",
		value: `bearer error=invalid_token`,
		want:  []Challenge{{Scheme: "bearer", Params: params{"error": "invalid_token"}}},
	},
	{
		name:  "token68 then bare scheme",
		value: `Negotiate abc123==, Bearer`,
		want:  []Challenge{{Scheme: "Negotiate", Token68: "abc123=="}, {Scheme: "Bearer"}},
	},
	{
		name:  "token68 with padding and slash",
		value: `Basic dXNlcjpw/+YXNz==`,
		want:  []Challenge{{Scheme: "Basic", Token68: "dXNlcjpw/+YXNz=="}},
	},
	{
		name:  "token68 looking like a param without value",
		value: `Bearer error=`,
		want:  []Challenge{{Scheme: "Bearer", Token68: "error="}},
	},
	{
		name:  "ows around equals and commas",
		value: "  Bearer \t realm = \"x\" ,\terror\t=\tinvalid_token ,  Basic  ",
		want: []Challenge{
			{Scheme: "Bearer", Params: params{"realm": "x", "error": "invalid_token"}},
			{Scheme: "Basic"},
		},
	},
	{
		name:  "empty list elements",
		value: `, ,Bearer realm="a", , ,error="invalid_token",, Basic,,`,
		want: []Challenge{
			{Scheme: "Bearer", Params: params{"realm": "a", "error": "invalid_token"}},
			{Scheme: "Basic"},
		},
	},
	{
		name:  "escapes",
		value: `Bearer a="q\"uote", b="back\\slash", c="\x\y", d=""`,
		want: []Challenge{{Scheme: "Bearer", Params: params{
			"a": `q"uote`, "b": `back\slash`, "c": "xy", "d": "",
		}}},
	},
	{
		name:  "comma and equals inside quotes",
		value: `Bearer scope="a,b=c", realm="r"`,
		want:  []Challenge{{Scheme: "Bearer", Params: params{"scope": "a,b=c", "realm": "r"}}},
	},
	{
		name:  "unterminated quote runs to the end",
		value: `Bearer realm="abc, error="invalid_token"`,
		want:  []Challenge{{Scheme: "Bearer", Params: params{"realm": "abc, error="}}},
	},
	{
		name:  "unterminated quote after a backslash",
		value: `Bearer realm="abc\`,
		want:  []Challenge{{Scheme: "Bearer", Params: params{"realm": "abc"}}},
	},
	{
		name:  "duplicate params: first wins, names case-insensitive",
		value: `Bearer Error="invalid_token", ERROR="insufficient_scope"`,
		want:  []Challenge{{Scheme: "Bearer", Params: params{"error": "invalid_token"}}},
	},
	{
		name:  "lenient unquoted value",
		value: `Bearer realm=https://api.example.com/v1, error=invalid_token`,
		want: []Challenge{{Scheme: "Bearer", Params: params{
			"realm": "https://api.example.com/v1", "error": "invalid_token",
		}}},
	},
	{
		name:  "many challenges",
		value: `A, B x=1, C abc=, D y="2", E, F`,
		want: []Challenge{
			{Scheme: "A"},
			{Scheme: "B", Params: params{"x": "1"}},
			{Scheme: "C", Token68: "abc="},
			{Scheme: "D", Params: params{"y": "2"}},
			{Scheme: "E"},
			{Scheme: "F"},
		},
	},
	{name: "empty", value: ``, want: nil},
	{name: "only separators", value: " , \t,, ", want: nil},
	{name: "garbage", value: `"quoted" Bearer`, want: nil},
	{name: "equals first", value: `=Bearer`, want: nil},
	{name: "scheme glued to equals", value: `Bearer="x", Basic`, want: nil},
	{
		name:  "garbage after a challenge drops the rest",
		value: `Basic realm="a", @@@, Bearer`,
		want:  []Challenge{{Scheme: "Basic", Params: params{"realm": "a"}}},
	},
	{
		name:  "two tokens after scheme keep the scheme",
		value: `Bearer foo bar, Basic`,
		want:  []Challenge{{Scheme: "Bearer"}},
	},
	{
		name:  "missing value keeps earlier params",
		value: `Bearer realm="a", error=, Basic`,
		want:  []Challenge{{Scheme: "Bearer", Params: params{"realm": "a"}}},
	},
	{
		name:  "junk after quoted value",
		value: `Bearer realm="a"x, Basic`,
		want:  []Challenge{{Scheme: "Bearer", Params: params{"realm": "a"}}},
	},
	{
		name:  "param-looking element after token68 is malformed",
		value: `Basic abc==, realm="x", Bearer`,
		want:  []Challenge{{Scheme: "Basic", Token68: "abc=="}},
	},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Parse(tt.value))
		})
	}
}

func TestChallengeIsAndParam(t *testing.T) {
	cs := Parse(`bEaReR Realm="r", ERROR="invalid_token"`)
	require.Len(t, cs, 1)
	c := cs[0]

	assert.True(t, c.Is("Bearer"))
	assert.True(t, c.Is("BEARER"))
	assert.False(t, c.Is("Basic"))
	assert.Equal(t, "invalid_token", c.Param("error"))
	assert.Equal(t, "invalid_token", c.Param("Error"))
	assert.Equal(t, "r", c.Param("REALM"))
	assert.Empty(t, c.Param("scope"))
	assert.Empty(t, Challenge{Scheme: "Basic"}.Param("realm"), "nil Params")
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []Challenge
	}{
		{name: "no header", lines: nil, want: nil},
		{
			name:  "one line",
			lines: []string{`Basic realm="a", Bearer`},
			want:  []Challenge{{Scheme: "Basic", Params: params{"realm": "a"}}, {Scheme: "Bearer"}},
		},
		{
			name:  "several lines in order",
			lines: []string{`Basic realm="a", Negotiate`, `Bearer error="invalid_token"`, ``, `Digest x=1`},
			want: []Challenge{
				{Scheme: "Basic", Params: params{"realm": "a"}},
				{Scheme: "Negotiate"},
				{Scheme: "Bearer", Params: params{"error": "invalid_token"}},
				{Scheme: "Digest", Params: params{"x": "1"}},
			},
		},
		{
			name:  "a malformed line does not hide the next",
			lines: []string{`@@@`, `Bearer`},
			want:  []Challenge{{Scheme: "Bearer"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tt.lines {
				h.Add("Www-Authenticate", l)
			}
			assert.Equal(t, tt.want, ParseHeader(h))
		})
	}
}

func TestBearer(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string
		want   Challenge
		wantOK bool
	}{
		{name: "no header", lines: nil, wantOK: false},
		{name: "other schemes only", lines: []string{`Basic realm="a", Negotiate abc=`}, wantOK: false},
		{
			name:   "second line, first bearer wins",
			lines:  []string{`Basic realm="a"`, `bearer error="invalid_token", Bearer error="insufficient_scope"`},
			want:   Challenge{Scheme: "bearer", Params: params{"error": "invalid_token"}},
			wantOK: true,
		},
		{
			name:   "bare bearer",
			lines:  []string{`Bearer`},
			want:   Challenge{Scheme: "Bearer"},
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tt.lines {
				h.Add("WWW-Authenticate", l)
			}
			got, ok := First(h, "Bearer")
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"GET": true, "DPoP": true, "x-custom_1.0~!#$%&'*+^`|": true,
		"": false, "G E T": false, "GET\n": false, "a,b": false, `"a"`: false, "é": false,
	} {
		assert.Equal(t, want, IsToken(s), "%q", s)
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.value)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got := Parse(value)
		assert.Equal(t, got, Parse(value), "not deterministic")
		for _, c := range got {
			assert.True(t, IsToken(c.Scheme), "scheme %q is not a token", c.Scheme)
			assert.False(t, c.Token68 != "" && c.Params != nil, "both token68 and params")
			assert.True(t, c.Token68 == "" || isToken68(c.Token68), "bad token68 %q", c.Token68)
			assert.True(t, c.Params == nil || len(c.Params) > 0, "empty non-nil params")
			for name := range c.Params {
				assert.True(t, IsToken(name), "param name %q is not a token", name)
				assert.Equal(t, strings.ToLower(name), name, "param name not lower-case")
			}
		}
		// What was read survives a round trip through its canonical form.
		assert.Equal(t, got, Parse(format(got)), "round trip of %q", format(got))
	})
}

// isToken68 reports whether s matches the token68 grammar.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	for i := 0; i < len(body); i++ {
		if !isToken68Char(body[i]) {
			return false
		}
	}
	return body != ""
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// format writes challenges back as a field value, every parameter value
// quoted and parameters sorted by name.
func format(cs []Challenge) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		s := c.Scheme
		if c.Token68 != "" {
			s += " " + c.Token68
		}
		for i, name := range slices.Sorted(maps.Keys(c.Params)) {
			sep := ", "
			if i == 0 {
				sep = " "
			}
			s += sep + name + `="` + quoteEscaper.Replace(c.Params[name]) + `"`
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
