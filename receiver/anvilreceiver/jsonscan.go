package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// parser is a small JSON scanner over one body. Syntax errors are returned;
// the first semantic error of the current event is kept in sem while the
// event is still scanned to its end, so the next event can be read.
type parser struct {
	b         []byte
	i         int
	sem       string
	semReason string
	truncated int
	scratch   []byte
	nameBuf   []byte
	intern    *internTable
	// meas is the arena of the batch's measurements; an event's are
	// meas[measStart:] while it is read.
	meas      []measurement
	measStart int
}

func (p *parser) reset(b []byte) {
	p.b, p.i = b, 0
	p.sem, p.semReason = "", ""
	p.truncated = 0
}

func (p *parser) setSem(reason, format string, args ...any) {
	if p.sem == "" {
		p.sem, p.semReason = fmt.Sprintf(format, args...), reason
	}
}

func (p *parser) syntaxErr(msg string) error {
	return &requestError{http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: %s", p.i, msg)}
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) colon() error {
	p.ws()
	if !p.consume(':') {
		return p.syntaxErr("expected ':' after an object key")
	}
	p.ws()
	return nil
}

// next reads the separator after a member or element: true after ',', false
// after the closing byte.
func (p *parser) next(closing byte) (bool, error) {
	p.ws()
	if p.i >= len(p.b) {
		return false, p.syntaxErr("unexpected end of input")
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		p.ws()
		return true, nil
	case closing:
		p.i++
		return false, nil
	}
	return false, p.syntaxErr(fmt.Sprintf("expected ',' or '%c'", closing))
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// skipValue scans over one JSON value, checking its syntax.
func (p *parser) skipValue(nesting int) error {
	if nesting > maxJSONNesting {
		return p.syntaxErr(fmt.Sprintf("nested deeper than %d levels", maxJSONNesting))
	}
	switch c := p.peek(); {
	case c == '"':
		_, err := p.readStringRaw()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, _, _, err := p.readNumber()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '{':
		p.i++
		p.ws()
		if p.consume('}') {
			return nil
		}
		for {
			if _, err := p.readStringRaw(); err != nil {
				return err
			}
			if err := p.colon(); err != nil {
				return err
			}
			if err := p.skipValue(nesting + 1); err != nil {
				return err
			}
			more, err := p.next('}')
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
		}
	case c == '[':
		p.i++
		p.ws()
		if p.consume(']') {
			return nil
		}
		for {
			if err := p.skipValue(nesting + 1); err != nil {
				return err
			}
			more, err := p.next(']')
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
		}
	}
	if p.i >= len(p.b) {
		return p.syntaxErr("unexpected end of input")
	}
	return p.syntaxErr(fmt.Sprintf("unexpected character %q", p.b[p.i]))
}

func (p *parser) literal(lit string) error {
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return nil
	}
	return p.syntaxErr("invalid literal (want true, false or null)")
}

// readNumber scans a JSON number. isInt is true for an integer literal that
// fits int64 (then iv holds it).
func (p *parser) readNumber() (f float64, iv int64, isInt bool, err error) {
	start := p.i
	b := p.b
	i := p.i
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
		// Fast path: an integer of at most 18 digits always fits int64.
		if digits := b[start:i]; len(digits) <= 19 && (i >= len(b) || (b[i] != '.' && b[i] != 'e' && b[i] != 'E')) {
			neg := digits[0] == '-'
			if neg {
				digits = digits[1:]
			}
			if len(digits) <= 18 {
				var n int64
				for _, c := range digits {
					n = n*10 + int64(c-'0')
				}
				if neg {
					n = -n
				}
				p.i = i
				return float64(n), n, true, nil
			}
		}
	default:
		p.i = i
		return 0, 0, false, p.syntaxErr("invalid number")
	}
	integer := true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			p.i = i
			return 0, 0, false, p.syntaxErr("invalid number: digits expected after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			p.i = i
			return 0, 0, false, p.syntaxErr("invalid number: digits expected in the exponent")
		}
	}
	p.i = i
	lit := unsafe.String(&b[start], i-start)
	if integer {
		if n, perr := strconv.ParseInt(lit, 10, 64); perr == nil {
			return float64(n), n, true, nil
		}
	}
	f, perr := strconv.ParseFloat(lit, 64)
	if perr != nil && !errors.Is(perr, strconv.ErrRange) {
		return 0, 0, false, p.syntaxErr("invalid number")
	}
	return f, 0, false, nil
}

// readStringRaw reads a JSON string and returns its decoded bytes; they alias
// the body or the parser's scratch buffer and are valid until the next call.
func (p *parser) readStringRaw() ([]byte, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		if p.i >= len(p.b) {
			return nil, p.syntaxErr("unexpected end of input")
		}
		return nil, p.syntaxErr("expected a string")
	}
	p.i++
	start := p.i
	b := p.b
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
			p.i = i + 1
			if high >= utf8.RuneSelf {
				return p.validUTF8(b[start:i]), nil
			}
			return b[start:i], nil
		case c == '\\':
			return p.readEscaped(start, i)
		default:
			p.i = i
			return nil, p.syntaxErr("control character in a string")
		}
	}
	p.i = len(b)
	return nil, p.syntaxErr("unterminated string")
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

func (p *parser) readEscaped(start, i int) ([]byte, error) {
	b := p.b
	out := append(p.scratch[:0], b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			p.i = i + 1
			p.scratch = out
			return p.validUTF8(out), nil
		case c < 0x20:
			p.i = i
			return nil, p.syntaxErr("control character in a string")
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
				p.i = i
				return nil, p.syntaxErr("invalid \\u escape")
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
			p.i = i
			return nil, p.syntaxErr("invalid escape in a string")
		}
		i += 2
	}
	p.i = len(b)
	return nil, p.syntaxErr("unterminated string")
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

// validUTF8 replaces invalid UTF-8 (which OTLP's protobuf strings must not
// carry) with U+FFFD.
func (p *parser) validUTF8(raw []byte) []byte {
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

// str turns decoded bytes into a string, interning short ones (metadata keys
// and low-cardinality values repeat in every event).
func (p *parser) str(raw []byte) string {
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

// countMembers returns the number of members of the JSON object whose
// contents start at b[i] (just after its '{'), scanning to its closing brace
// without validating: it only sizes the attribute map the object is decoded
// into.
func countMembers(b []byte, i int) int {
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
