package main

import (
	"testing"

	"github.com/spf13/pflag"

	"cove/internal/engine/specgen"
)

func TestParseMemSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "64k": 64 << 10, "64m": 64 << 20, "64MB": 64 << 20,
		"1g": 1 << 30, "1.5g": 3 << 29, "2t": 2 << 40} {
		if got, err := parseMemSize(in, false); err != nil || got != want {
			t.Errorf("parseMemSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if got, err := parseMemSize("-1", true); err != nil || got != -1 {
		t.Errorf("parseMemSize(-1, unlimited) = %d, %v", got, err)
	}
	for _, bad := range []string{"", "-1", "-5m", "x", "1x", "5mbb", "1e400"} {
		if _, err := parseMemSize(bad, false); err == nil {
			t.Errorf("parseMemSize(%q) passed", bad)
		}
	}
}

func TestResourceFlagsUpdateKeepsUnnamed(t *testing.T) {
	var f resourceFlags
	fs := pflag.NewFlagSet("update", pflag.ContinueOnError)
	f.add(fs, true)
	if err := fs.Parse([]string{"--memory", "128m", "--cpu-quota", "20000"}); err != nil {
		t.Fatal(err)
	}
	r := specgen.Resources{Memory: 64 << 20, PidsLimit: 50, NanoCpus: 5e8}
	if err := f.parse(fs, &r); err != nil {
		t.Fatal(err)
	}
	if r.Memory != 128<<20 || r.PidsLimit != 50 || r.CPUQuota != 20000 || r.NanoCpus != 0 {
		t.Errorf("update parse: %+v", r)
	}
}
