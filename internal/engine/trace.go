package engine

import (
	"strconv"
	"time"
)

func nowFunc() time.Time { return time.Now() }

// Trace is trace for the CLI's own steps.
func Trace(step string) { trace(step) }

func sinceStart() string {
	return strconv.FormatFloat(float64(time.Since(traceStart).Microseconds())/1000, 'f', 1, 64) + "ms"
}
