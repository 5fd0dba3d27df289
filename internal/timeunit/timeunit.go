// Package timeunit converts duration measurements between the time units Anvil
// and its users name: the BEAM's `native` unit (configurable per receiver),
// nanosecond, microsecond, millisecond and second, in their long and short forms.
package timeunit // import "github.com/anvil/anvilcol/internal/timeunit"

import "fmt"

// Unit is a time unit as a number of nanoseconds; Native (0) is resolved by the
// caller to its configured native unit.
type Unit int64

const (
	Native      Unit = 0
	Nanosecond  Unit = 1
	Microsecond Unit = 1e3
	Millisecond Unit = 1e6
	Second      Unit = 1e9
)

// Parse reads a unit name: native, nanosecond|ns, microsecond|us, millisecond|ms,
// second|s (plurals accepted). "" is Native.
func Parse(s string) (Unit, error) {
	switch s {
	case "", "native":
		return Native, nil
	case "ns", "nanosecond", "nanoseconds":
		return Nanosecond, nil
	case "us", "µs", "microsecond", "microseconds":
		return Microsecond, nil
	case "ms", "millisecond", "milliseconds":
		return Millisecond, nil
	case "s", "second", "seconds":
		return Second, nil
	}
	return 0, fmt.Errorf("unknown time unit %q (want native, nanosecond, microsecond, millisecond or second)", s)
}

// Convert converts v from one unit to another; both must be resolved (not Native).
func Convert(v float64, from, to Unit) float64 {
	if from == to || from == Native || to == Native {
		return v
	}
	return v * float64(from) / float64(to)
}

// Short returns the UCUM-style symbol for a unit (ns, us, ms, s).
func (u Unit) Short() string {
	switch u {
	case Nanosecond:
		return "ns"
	case Microsecond:
		return "us"
	case Millisecond:
		return "ms"
	case Second:
		return "s"
	}
	return "native"
}
