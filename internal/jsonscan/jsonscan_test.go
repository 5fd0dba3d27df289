package jsonscan

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStringScanWordAtATimeFindsEverySpecialByte(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			w := []byte("aaaaaaaa")
			w[pos] = byte(c)
			v := uint64(0)
			for i := 7; i >= 0; i-- {
				v = v<<8 | uint64(w[i])
			}
			if stringSpecial[c] {
				require.Truef(t, swarSpecial(v), "byte %#x at %d", c, pos)
			}
		}
	}
	require.False(t, swarSpecial(0x6161616161616161))
	require.False(t, swarSpecial(0xc3a9c3a9c3a9c3a9)) // "éééé": UTF-8 is not special
}

func TestStringsDecodeAtEveryOffset(t *testing.T) {
	for _, tail := range []string{`\n`, `\"`, `é`, "\xff", `\u00e9`, `"`} {
		for n := range 20 {
			lit := `"` + strings.Repeat("x", n) + tail + strings.Repeat("y", 9) + `"`
			if tail == `"` {
				lit = `"` + strings.Repeat("x", n) + `"`
			}
			p := &Scanner{}
			p.Reset([]byte(lit))
			raw, err := p.ReadStringRaw()
			require.NoError(t, err, lit)
			var want string
			require.NoError(t, json.Unmarshal([]byte(lit), &want), lit)
			require.Equal(t, want, string(raw), lit)
			require.Equal(t, len(lit), p.I, lit)
		}
	}
}

func TestMetadataMapSizedByItsMembers(t *testing.T) {
	for body, want := range map[string]int{
		`{}`:       0,
		`{"a": 1}`: 1,
		`{"a": "x:y", "b": {"c": 1, "d": [1, {"e": 2}]}, "f": 3}`:                                    3,
		`{"long key with \" and : inside": "a value longer than eight bytes, with : and {", "k": 1}`: 2,
		`{"a": 1, `: 1, // malformed: only a hint
	} {
		require.Equal(t, want, CountMembers([]byte(body), 1), body)
	}
}

func TestNumbersDecodeLikeStrconv(t *testing.T) {
	for _, lit := range []string{"0", "-0", "7", "-7", "123456789012345678", "-123456789012345678",
		"1234567890123456789", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
		"99999999999999999999", "9999999999999999999", "-9999999999999999999", "-9223372036854775809",
		"1796121724361671788", "-1219660973361671788", "18446744073709551615", "1.5", "-2e3", "1E2", "0.000001"} {
		p := &Scanner{}
		p.Reset([]byte(lit))
		f, iv, isInt, err := p.ReadNumber()
		require.NoError(t, err, lit)
		require.Equal(t, len(lit), p.I, lit)
		if n, perr := strconv.ParseInt(lit, 10, 64); perr == nil {
			require.True(t, isInt, lit)
			require.Equal(t, n, iv, lit)
			require.Equal(t, float64(n), f, lit)
			continue
		}
		require.False(t, isInt, lit)
		want, _ := strconv.ParseFloat(lit, 64)
		require.Equal(t, want, f, lit)
	}
}

// FuzzSkipValue: the scanner accepts exactly what encoding/json accepts as
// one JSON value (within MaxNesting), never panics, and stops at its end.
func FuzzSkipValue(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `"x"`, `-0.5e3`, `{"a": [1, {"b": null}], "c": "\u00e9\ud83d\ude00"}`,
		`[1, "x", null, true, false]`, `{"a":`, `[1,]`, `"\x"`, `01`, `1.`, `tru`, "\"\xff\"",
		`{"name": ["a", "b"], "time": "2026-05-01T12:00:00Z", "measurements": {"duration": 1.5e3}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if strings.Count(string(body), "[")+strings.Count(string(body), "{") > MaxNesting {
			return // deeper than the scanner's limit: rejected by design
		}
		var p Scanner
		p.Reset(body)
		p.WS()
		err := p.SkipValue(0)
		if err == nil {
			p.WS()
			if p.I != len(body) {
				err = p.SyntaxErr("trailing data")
			}
		}
		if want := json.Valid(body); (err == nil) != want {
			t.Fatalf("scanner error %v, encoding/json valid %v, on %q", err, want, body)
		}
	})
}
