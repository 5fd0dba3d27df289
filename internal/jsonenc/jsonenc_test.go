package jsonenc

import (
	"encoding/json"
	"testing"
)

func TestAppendStringIsValidJSONOfTheSameText(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "new\nline\r\ttab", "\x00\x1f", "é ✓ 😀", "bad \xff utf8"} {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		want := s
		if s == "bad \xff utf8" {
			want = "bad \ufffd utf8"
		}
		if got != want {
			t.Errorf("%q -> %s -> %q", s, b, got)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"b\\c\n\x01\xff")
	f.Fuzz(func(t *testing.T, s string) {
		var got string
		if err := json.Unmarshal(AppendString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
