// Package jsonscan is the anvil receiver's JSON scanner: a small, allocation-
// free reader over one body that checks syntax as it goes (nesting bounded by
// MaxNesting), decodes strings (escapes, invalid UTF-8 made valid) and
// numbers (ints kept exact), and interns short strings. The protocol on top
// of it (events, per-event errors, limits) stays in the receiver.
//
// It exists, rather than a general decoder, because it measured faster: see
// receiver/anvilreceiver/README.md, "Why a hand-written scanner".
package jsonscan // import "github.com/anvil/anvilcol/internal/jsonscan"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Limits of the scanner.
const (
	// MaxNesting bounds JSON nesting anywhere in a body (a syntax limit: it
	// keeps the scanner's recursion bounded).
	MaxNesting = 64
	// internMaxLen and internSets bound the string interning: strings up to
	// internMaxLen bytes, 2 x internSets strings at most (a power of two).
	internMaxLen = 64
	internSets   = 1024
)

// Scanner reads one JSON body: B[I:] is what is left. Its methods return a
// *SyntaxError for malformed input.
type Scanner struct {
	B       []byte
	I       int
	scratch []byte
	intern  *internTable
}

// Reset starts reading b.
func (p *Scanner) Reset(b []byte) {
	p.B, p.I = b, 0
	if p.intern == nil {
		p.intern = newInternTable()
	}
}

// SyntaxError is malformed JSON at byte Offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// SyntaxErr returns a SyntaxError at the current position.
func (p *Scanner) SyntaxErr(msg string) error { return &SyntaxError{Offset: p.I, Msg: msg} }

// WS skips white space.
func (p *Scanner) WS() {
	for p.I < len(p.B) {
		switch p.B[p.I] {
		case ' ', '\t', '\n', '\r':
			p.I++
		default:
			return
		}
	}
}

// Consume reads c if it is the next byte.
func (p *Scanner) Consume(c byte) bool {
	if p.I < len(p.B) && p.B[p.I] == c {
		p.I++
		return true
	}
	return false
}

// Open reads the '{' or '[' at the current position and the white space
// after it, and reports whether the object or array is empty (then its
// closing byte is read too).
func (p *Scanner) Open(closing byte) bool {
	p.I++
	p.WS()
	return p.Consume(closing)
}

// Key reads an object member's key and the colon after it; the key's bytes
// are valid until the next string is read.
func (p *Scanner) Key() ([]byte, error) {
	key, err := p.ReadStringRaw()
	if err == nil {
		err = p.Colon()
	}
	return key, err
}

// Colon reads the colon after an object key.
func (p *Scanner) Colon() error {
	p.WS()
	if !p.Consume(':') {
		return p.SyntaxErr("expected ':' after an object key")
	}
	p.WS()
	return nil
}

// Next reads the separator after a member or element: true after ',', false
// after the closing byte.
func (p *Scanner) Next(closing byte) (bool, error) {
	p.WS()
	if p.I >= len(p.B) {
		return false, p.SyntaxErr("unexpected end of input")
	}
	switch p.B[p.I] {
	case ',':
		p.I++
		p.WS()
		return true, nil
	case closing:
		p.I++
		return false, nil
	}
	return false, p.SyntaxErr(fmt.Sprintf("expected ',' or '%c'", closing))
}

// Peek returns the next byte, 0 at the end.
func (p *Scanner) Peek() byte {
	if p.I < len(p.B) {
		return p.B[p.I]
	}
	return 0
}

// SkipValue scans over one JSON value, checking its syntax.
func (p *Scanner) SkipValue(nesting int) error {
	if nesting > MaxNesting {
		return p.SyntaxErr(fmt.Sprintf("nested deeper than %d levels", MaxNesting))
	}
	switch c := p.Peek(); {
	case c == '"':
		_, err := p.ReadStringRaw()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, _, _, err := p.ReadNumber()
		return err
	case c == 't':
		return p.Literal("true")
	case c == 'f':
		return p.Literal("false")
	case c == 'n':
		return p.Literal("null")
	case c == '{':
		if p.Open('}') {
			return nil
		}
		for {
			if _, err := p.Key(); err != nil {
				return err
			}
			if err := p.SkipValue(nesting + 1); err != nil {
				return err
			}
			if more, err := p.Next('}'); !more || err != nil {
				return err
			}
		}
	case c == '[':
		if p.Open(']') {
			return nil
		}
		for {
			if err := p.SkipValue(nesting + 1); err != nil {
				return err
			}
			if more, err := p.Next(']'); !more || err != nil {
				return err
			}
		}
	}
	if p.I >= len(p.B) {
		return p.SyntaxErr("unexpected end of input")
	}
	return p.SyntaxErr(fmt.Sprintf("unexpected character %q", p.B[p.I]))
}

// Literal reads lit (true, false, null).
func (p *Scanner) Literal(lit string) error {
	if len(p.B)-p.I >= len(lit) && string(p.B[p.I:p.I+len(lit)]) == lit {
		p.I += len(lit)
		return nil
	}
	return p.SyntaxErr("invalid literal (want true, false or null)")
}

// ReadNumber scans a JSON number. isInt is true for an integer literal that
// fits int64 (then iv holds it).
func (p *Scanner) ReadNumber() (f float64, iv int64, isInt bool, err error) {
	start := p.I
	b := p.B
	i := p.I
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		// Fast path: an integer of at most 19 digits fits uint64 (nanosecond
		// timestamps and BEAM monotonic times are 19 digits), and it is an
		// int64 unless it exceeds MaxInt64 (-MinInt64 when negative).
		if digits := b[start:i]; len(digits) <= 20 && (i >= len(b) || (b[i] != '.' && b[i] != 'e' && b[i] != 'E')) {
			neg := digits[0] == '-'
			if neg {
				digits = digits[1:]
			}
			if len(digits) <= 19 {
				var u uint64
				for _, c := range digits {
					u = u*10 + uint64(c-'0')
				}
				switch {
				case u <= math.MaxInt64:
					n := int64(u)
					if neg {
						n = -n
					}
					p.I = i
					return float64(n), n, true, nil
				case neg && u == 1<<63:
					p.I = i
					return math.MinInt64, math.MinInt64, true, nil
				}
			}
		}
	default:
		p.I = i
		return 0, 0, false, p.SyntaxErr("invalid number")
	}
	integer := true
	if i < len(b) && b[i] == '.' {
		integer = false
		j := skipDigits(b, i+1)
		if j == i+1 {
			p.I = j
			return 0, 0, false, p.SyntaxErr("invalid number: digits expected after '.'")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			p.I = i
			return 0, 0, false, p.SyntaxErr("invalid number: digits expected in the exponent")
		}
		i = j
	}
	p.I = i
	lit := unsafe.String(&b[start], i-start)
	if integer {
		if n, perr := strconv.ParseInt(lit, 10, 64); perr == nil {
			return float64(n), n, true, nil
		}
	}
	f, perr := strconv.ParseFloat(lit, 64)
	if perr != nil && !errors.Is(perr, strconv.ErrRange) {
		return 0, 0, false, p.SyntaxErr("invalid number")
	}
	return f, 0, false, nil
}

// skipDigits returns the index after the decimal digits from b[i].
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// ReadStringRaw reads a JSON string and returns its decoded bytes; they alias
// the body or the scanner's scratch buffer and are valid until the next call.
func (p *Scanner) ReadStringRaw() ([]byte, error) {
	if p.I >= len(p.B) || p.B[p.I] != '"' {
		if p.I >= len(p.B) {
			return nil, p.SyntaxErr("unexpected end of input")
		}
		return nil, p.SyntaxErr("expected a string")
	}
	p.I++
	start := p.I
	b := p.B
	// Eight bytes at a time while none ends the fast scan; the byte loop
	// below takes over at the first word that might.
	i := start
	var wide uint64
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		if swarSpecial(v) {
			break
		}
		wide |= v
	}
	var high byte
	if wide&swarHigh != 0 {
		high = utf8.RuneSelf
	}
	for ; i < len(b); i++ {
		c := b[i]
		if !stringSpecial[c] {
			high |= c
			continue
		}
		switch {
		case c == '"':
			p.I = i + 1
			if high >= utf8.RuneSelf {
				return p.ValidUTF8(b[start:i]), nil
			}
			return b[start:i], nil
		case c == '\\':
			return p.readEscaped(start, i)
		default:
			p.I = i
			return nil, p.SyntaxErr("control character in a string")
		}
	}
	p.I = len(b)
	return nil, p.SyntaxErr("unterminated string")
}

// SWAR constants: a byte repeated in each of a word's eight bytes.
const (
	swarLow  = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// swarSpecial reports whether one of the eight bytes of v (no false
// negatives) is '"', '\\' or a control character.
func swarSpecial(v uint64) bool {
	q := v ^ (swarLow * '"')
	bs := v ^ (swarLow * '\\')
	return ((q-swarLow)&^q|(bs-swarLow)&^bs|(v-swarLow*0x20)&^v)&swarHigh != 0
}

// stringSpecial marks the bytes that end the fast scan of a JSON string.
var stringSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func (p *Scanner) readEscaped(start, i int) ([]byte, error) {
	b := p.B
	out := append(p.scratch[:0], b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			p.I = i + 1
			p.scratch = out
			return p.ValidUTF8(out), nil
		case c < 0x20:
			p.I = i
			return nil, p.SyntaxErr("control character in a string")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hex4(b[i+2:])
			if n < 0 {
				p.I = i
				return nil, p.SyntaxErr("invalid \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, n2 := hex4(bytesAfter(b, i, `\u`)); n2 >= 0 {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			p.I = i
			return nil, p.SyntaxErr("invalid escape in a string")
		}
		i += 2
	}
	p.I = len(b)
	return nil, p.SyntaxErr("unterminated string")
}

// bytesAfter returns b[i+len(prefix):] when b[i:] starts with prefix, else nil.
func bytesAfter(b []byte, i int, prefix string) []byte {
	if len(b)-i >= len(prefix) && string(b[i:i+len(prefix)]) == prefix {
		return b[i+len(prefix):]
	}
	return nil
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, -1
		}
	}
	return r, 4
}

// ValidUTF8 replaces invalid UTF-8 (which OTLP's protobuf strings must not
// carry) with U+FFFD.
func (p *Scanner) ValidUTF8(raw []byte) []byte {
	for _, c := range raw {
		if c >= utf8.RuneSelf {
			if !utf8.Valid(raw) {
				return []byte(strings.ToValidUTF8(string(raw), "\uFFFD"))
			}
			break
		}
	}
	return raw
}

// Str turns decoded bytes into a string, interning short ones (metadata keys
// and low-cardinality values repeat in every event).
func (p *Scanner) Str(raw []byte) string {
	if len(raw) > internMaxLen {
		return string(raw)
	}
	return p.intern.get(raw)
}

// internTable is a small 2-way set-associative cache of short strings: a
// lookup is one hash and one or two comparisons, a miss replaces the older
// entry of its set, so its size stays bounded whatever the bodies hold.
type internTable struct {
	seed uint64
	sets [internSets][2]string
}

func newInternTable() *internTable { return &internTable{seed: rand.Uint64() | 1} }

// internHash hashes a string by its length and its first and last (up to)
// eight bytes: constant time, enough to spread the keys and short values
// the table sees; colliding strings only evict each other.
func (t *internTable) hash(b []byte) uint64 {
	n := len(b)
	var a, z uint64
	switch {
	case n >= 8:
		a, z = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		a, z = uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:]))
	case n > 0:
		a = uint64(b[0])<<16 | uint64(b[n/2])<<8 | uint64(b[n-1])
	}
	h := (a ^ bits.RotateLeft64(z, 31) ^ uint64(n)<<56 ^ t.seed) * 0xff51afd7ed558ccd
	return h ^ h>>32
}

func (t *internTable) get(raw []byte) string {
	set := &t.sets[t.hash(raw)&(internSets-1)]
	if set[0] == string(raw) {
		return set[0]
	}
	if set[1] == string(raw) {
		set[0], set[1] = set[1], set[0]
		return set[0]
	}
	set[1], set[0] = set[0], string(raw)
	return set[0]
}

// CountMembers returns the number of members of the JSON object whose
// contents start at b[i] (just after its '{'), scanning to its closing brace
// without validating: it only sizes the attribute map the object is decoded
// into.
func CountMembers(b []byte, i int) int {
	n, depth := 0, 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i+8 <= len(b) && !swarSpecial(binary.LittleEndian.Uint64(b[i:])); i += 8 {
			}
			for ; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return n
			}
			depth--
		case ':':
			if depth == 0 {
				n++
			}
		}
	}
	return n
}
