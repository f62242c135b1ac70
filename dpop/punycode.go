package dpop

import "strings"

// asciiHost returns host with each label that is not ASCII in its Punycode
// form, "xn--" and RFC 3492's encoding, as net/http writes a host in the
// Host header (IDNA's Punycode profile: no mapping). A label that cannot
// be encoded is left as it is: net/http refuses to send it.
func asciiHost(host string) string {
	if isASCII(host) {
		return host
	}
	labels := strings.Split(host, ".")
	for i, l := range labels {
		if p, ok := punycode(l); ok && !isASCII(l) {
			labels[i] = "xn--" + p
		}
	}
	return strings.Join(labels, ".")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// The parameters of Punycode (RFC 3492 §5).
const (
	punyBase        = 36
	punyTMin        = 1
	punyTMax        = 26
	punySkew        = 38
	punyDamp        = 700
	punyInitialBias = 72
	punyInitialN    = 0x80
)

// punycode encodes s as RFC 3492 §6.3 does. Invalid UTF-8 counts as
// U+FFFD, as it does for net/http.
func punycode(s string) (string, bool) {
	if len(s) > 1024 { // no host label is this long; it bounds delta too
		return "", false
	}
	var out []byte
	basic, total := 0, 0
	for _, r := range s {
		if r < 0x80 {
			out = append(out, byte(r))
			basic++
		}
		total++
	}
	if basic > 0 {
		out = append(out, '-')
	}
	n, delta, bias := rune(punyInitialN), 0, punyInitialBias
	for h := basic; h < total; {
		m := rune(0x7fffffff) // the smallest code point not handled yet
		for _, r := range s {
			if r >= n && r < m {
				m = r
			}
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range s {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := punyBase; ; k += punyBase {
				t := min(max(k-bias, punyTMin), punyTMax)
				if q < t {
					break
				}
				out = append(out, punyDigit(t+(q-t)%(punyBase-t)))
				q = (q - t) / (punyBase - t)
			}
			out = append(out, punyDigit(q))
			bias = punyAdapt(delta, h+1, h == basic)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out), true
}

func punyDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

func punyAdapt(delta, points int, first bool) int {
	if first {
		delta /= punyDamp
	} else {
		delta /= 2
	}
	delta += delta / points
	k := 0
	for delta > (punyBase-punyTMin)*punyTMax/2 {
		delta /= punyBase - punyTMin
		k += punyBase
	}
	return k + (punyBase-punyTMin+1)*delta/(delta+punySkew)
}
