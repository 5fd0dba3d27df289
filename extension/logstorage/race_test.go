//go:build race

package logstorage

const raceEnabled = true
