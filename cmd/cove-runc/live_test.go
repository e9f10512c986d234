package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"-1", -1, true}, {"1024", 1024, true}, {"256m", 256 << 20, true}, {"256M", 256 << 20, true},
		{"1g", 1 << 30, true}, {"1.5g", 3 << 29, true}, {"64k", 64 << 10, true}, {"2mb", 2 << 20, true},
		{"2MiB", 2 << 20, true}, {"10b", 10, true}, {"1t", 1 << 40, true},
		{"-5", 0, false}, {"-1m", 0, false}, {"", 0, false}, {"m", 0, false}, {"lots", 0, false},
		{"1e9", 0, false}, {"12x", 0, false}, {"99999999999p", 0, false},
	} {
		got, err := parseMemory(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseMemory(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFilterPs(t *testing.T) {
	out := "UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init\n" +
		"root         42       1  0 10:00 ?        00:00:00 sleep 1000\n" +
		"root         420      1  0 10:00 ?        00:00:00 sleep 42\n"
	got, err := filterPs(out, []int{42})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "UID") || !strings.Contains(lines[1], "sleep 1000") {
		t.Errorf("filterPs kept %q", lines)
	}
	if _, err := filterPs("USER COMMAND\nroot init\n", []int{1}); err == nil {
		t.Error("filterPs accepted output without a PID column")
	}
}

func TestResourcesFromFlags(t *testing.T) {
	g := &globals{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	res, err := resourcesFromFlags(g, map[string]string{
		"memory": "256m", "memory-swap": "-1", "cpu-quota": "-1", "cpu-shares": "512",
		"pids-limit": "0", "blkio-weight": "500", "kernel-memory": "1m",
	})
	if err != nil {
		t.Fatal(err)
	}
	if *res.Memory.Limit != 256<<20 || *res.Memory.Swap != -1 || *res.CPU.Quota != -1 || *res.CPU.Shares != 512 ||
		res.Pids != nil || *res.BlockIO.Weight != 500 {
		t.Errorf("resources %+v", res)
	}
	for flag, v := range map[string]string{
		"memory": "-2", "memory-reservation": "x", "cpu-period": "-1", "cpu-quota": "-2", "pids-limit": "-2",
		"blkio-weight": "1001", "cpu-rt-runtime": "z", "l3-cache-schema": "L3:0=f",
	} {
		if _, err := resourcesFromFlags(g, map[string]string{flag: v}); err == nil || !strings.Contains(err.Error(), "--"+flag) {
			t.Errorf("--%s %q: error %v, want one naming the flag", flag, v, err)
		}
	}
}
