//go:build race

package cardinalityguardprocessor

const raceEnabled = true
