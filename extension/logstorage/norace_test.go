//go:build !race

package logstorage

const raceEnabled = false
