package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ParseSignal accepts a signal number ("9"), a name with or without the SIG
// prefix in any case ("KILL", "sigterm"), or a realtime signal written
// RTMIN+n / RTMAX-n.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > rtmax {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for _, rt := range []struct {
		prefix string
		base   int
		dir    int
	}{{"RTMIN+", rtmin, 1}, {"RTMAX-", rtmax, -1}} {
		if rest, ok := strings.CutPrefix(name, rt.prefix); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n > rtmax-rtmin {
				return 0, fmt.Errorf("invalid signal %q", s)
			}
			return unix.Signal(rt.base + rt.dir*n), nil
		}
	}
	switch name {
	case "RTMIN":
		return unix.Signal(rtmin), nil
	case "RTMAX":
		return unix.Signal(rtmax), nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// The realtime range as glibc exposes it (32 and 33 are its own).
const (
	rtmin = 34
	rtmax = 64
)
