package metricstate // import "github.com/anvil/anvilcol/internal/metricstate"

// Restarted reports whether a cumulative point with start time `start` does
// not continue a series last seen with start time `prev`: both are known
// (non-zero) and differ. It takes timestamps or their HashStart.
func Restarted[T ~uint32 | ~uint64](prev, start T) bool {
	return prev != 0 && start != 0 && prev != start
}

// SumDelta is the increase of a cumulative sum (or the change of a gauge)
// from prev to cur. A restarted series, or a monotonic one that went down,
// counts again from zero: the increase is cur.
func SumDelta(prev, cur float64, monotonic, restarted bool) float64 {
	if restarted || (monotonic && cur < prev) {
		return cur
	}
	return cur - prev
}
