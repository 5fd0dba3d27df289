package timeunit

import "testing"

func TestConvert(t *testing.T) {
	tests := []struct {
		v        float64
		from, to string
		want     float64
	}{
		{1_500_000, "ns", "ms", 1.5},
		{2, "s", "ms", 2000},
		{250, "microsecond", "millisecond", 0.25},
		{3_000_000_000, "nanosecond", "s", 3},
		{7, "ms", "ms", 7},
	}
	for _, tt := range tests {
		from, err := Parse(tt.from)
		if err != nil {
			t.Fatal(err)
		}
		to, err := Parse(tt.to)
		if err != nil {
			t.Fatal(err)
		}
		if got := Convert(tt.v, from, to); got != tt.want {
			t.Errorf("Convert(%v, %s, %s) = %v, want %v", tt.v, tt.from, tt.to, got, tt.want)
		}
	}
}

func TestParseRejectsUnknown(t *testing.T) {
	if _, err := Parse("fortnight"); err == nil {
		t.Fatal("want error")
	}
	if u, _ := Parse(""); u != Native {
		t.Fatal("empty must be native")
	}
}
