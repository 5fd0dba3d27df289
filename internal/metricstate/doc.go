// Package metricstate is the one implementation of the metric arithmetic the
// anvil receiver, the cardinality guard and the alert processor share:
//
//   - series identity: an order-independent XXH3 (xxHash family) hash of an attribute set
//     (HashAttributes, or HashKey/HashValue/HashPair/SetHash for callers that
//     keep key hashes), and a 32-bit form of a start time (HashStart);
//   - cumulative-to-delta: Restarted (start-time resets) and SumDelta for sums,
//     Histogram.Delta for histograms, exponential histograms and summaries;
//   - histogram arithmetic (Histogram): explicit-bucket recording, add and
//     subtract, exponential add at a common scale, subtract and downscale
//     (positive and negative ranges, zero bucket), summary count/sum;
//   - recording values into an exponential histogram (Recorder: the SDKs'
//     lightstep/go-expohisto, which measured faster than our own).
//
// Exponential bucket i at scale s covers (base^i, base^(i+1)] with
// base = 2^(2^-s); the negative range mirrors it (bucket i of Neg covers
// [-base^(i+1), -base^i)). Indexes are negative in either range for
// magnitudes below 1.
package metricstate // import "github.com/anvil/anvilcol/internal/metricstate"
