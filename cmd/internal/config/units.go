package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"time"
)

// ParseDuration parses a duration in Go's syntax ("90s", "1h30m") with two
// more units, d (24h) and w (7d): "30d", "1d12h", "2w". Command-line flags
// use it too, so a duration reads the same everywhere.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	bad := fmt.Errorf("invalid duration %q (write e.g. \"90s\", \"5m\", \"1h30m\", \"30d\")", orig)
	if s == "" {
		return 0, bad
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, bad
	}
	var total time.Duration
	for s != "" {
		m := durationPart.FindStringSubmatch(s)
		if m == nil {
			return 0, bad
		}
		s = s[len(m[0]):]
		num, unit := m[1], m[2]
		var d time.Duration
		var err error
		switch unit {
		case "d", "w":
			d, err = time.ParseDuration(num + "h")
			mult := time.Duration(24)
			if unit == "w" {
				mult = 24 * 7
			}
			if err == nil && d > math.MaxInt64/mult {
				err = errOverflow
			}
			d *= mult
		default:
			d, err = time.ParseDuration(num + unit)
		}
		// The part's syntax is valid, so an error can only be overflow.
		if err != nil || total > math.MaxInt64-d {
			return 0, fmt.Errorf("duration %q is too long", orig)
		}
		total += d
	}
	if neg {
		total = -total
	}
	return total, nil
}

var errOverflow = errors.New("overflow")

var durationPart = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d|w)`)

// ParseSize parses a size in bytes: a whole number ("1048576"), or a number
// with a unit, case-insensitive and optionally after a space: K/KB, M/MB,
// G/GB, T/TB are powers of 10 ("25MB" is 25 000 000 bytes), KiB, MiB,
// GiB, TiB powers of 2 ("25MiB" is 25×2²⁰). Fractions are allowed with a
// unit ("1.5MB") and rounded down to whole bytes. "0" is 0.
func ParseSize(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		if strings.HasPrefix(strings.TrimSpace(s), "-") {
			return 0, fmt.Errorf("size %q is negative", s)
		}
		return 0, fmt.Errorf("invalid size %q (write e.g. \"25MB\", \"25MiB\" or a number of bytes)", s)
	}
	mult, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use KB, MB, GB, KiB, MiB or GiB)", s, m[2])
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if mult == 1 && !r.IsInt() {
		return 0, fmt.Errorf("invalid size %q: a number of bytes must be whole", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n.Int64(), nil
}

var sizePattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)$`)

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseFingerprint checks a certificate pin, "sha256:" and the SHA-256 of
// the certificate's DER in hex, upper or lower case, optionally with colons
// between the bytes (as openssl prints it), and returns it normalised to
// "sha256:" and 64 lower-case hex digits.
func ParseFingerprint(s string) (string, error) {
	bad := fmt.Errorf("invalid fingerprint %q: want \"sha256:\" and 64 hex digits (openssl x509 -noout -fingerprint -sha256)", s)
	h, ok := strings.CutPrefix(strings.ToLower(s), "sha256:")
	if !ok {
		return "", bad
	}
	if strings.Contains(h, ":") {
		parts := strings.Split(h, ":")
		if len(parts) != 32 {
			return "", bad
		}
		for _, p := range parts {
			if len(p) != 2 {
				return "", bad
			}
		}
		h = strings.Join(parts, "")
	}
	if len(h) != 64 {
		return "", bad
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", bad
	}
	return "sha256:" + h, nil
}
