package caps

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    Set
		wantErr string
	}{
		{name: "empty", in: nil, want: 0},
		{name: "first", in: []string{"CAP_CHOWN"}, want: 1},
		{name: "last", in: []string{"CAP_CHECKPOINT_RESTORE"}, want: 1 << 40},
		{name: "several", in: []string{"CAP_KILL", "CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE"}, want: 1<<5 | 1<<29 | 1<<10},
		{name: "duplicate", in: []string{"CAP_KILL", "CAP_KILL"}, want: 1 << 5},
		{name: "unknown", in: []string{"CAP_KILL", "CAP_FOO"}, wantErr: `unknown capability "CAP_FOO"`},
		{name: "lowercase", in: []string{"cap_kill"}, wantErr: `unknown capability "cap_kill"`},
		{name: "no prefix", in: []string{"KILL"}, wantErr: `unknown capability "KILL"`},
		{name: "empty name", in: []string{""}, wantErr: `unknown capability ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Parse(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %#x, want %#x", tt.in, uint64(got), uint64(tt.want))
			}
		})
	}
}

func TestAllNames(t *testing.T) {
	if len(names) != 41 {
		t.Fatalf("have %d names, want 41", len(names))
	}
	for i, n := range names {
		if !strings.HasPrefix(n, "CAP_") {
			t.Errorf("names[%d] = %q lacks CAP_ prefix", i, n)
		}
		s, err := Parse([]string{n})
		if err != nil || s != 1<<uint(i) {
			t.Errorf("Parse(%q) = %#x, %v; want bit %d", n, uint64(s), err, i)
		}
		if !Known(n) {
			t.Errorf("Known(%q) = false", n)
		}
	}
	all, err := Parse(names[:])
	if err != nil {
		t.Fatal(err)
	}
	if all != 1<<41-1 {
		t.Fatalf("all = %#x", uint64(all))
	}
	if got := all.Names(); !slices.Equal(got, names[:]) {
		t.Fatalf("Names() = %v", got)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		in   Set
		want []string
	}{
		{0, []string{}},
		{1<<29 | 1<<5 | 1<<10, []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"}},
		{1<<40 | 1, []string{"CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"}},
		{1 << 63, []string{"CAP_63"}},
	}
	for _, tt := range tests {
		if got := tt.in.Names(); !slices.Equal(got, tt.want) {
			t.Errorf("%#x.Names() = %v, want %v", uint64(tt.in), got, tt.want)
		}
	}
	if got := Set(1<<5 | 1<<0).String(); got != "CAP_CHOWN,CAP_KILL" {
		t.Errorf("String() = %q", got)
	}
}

func TestUpTo(t *testing.T) {
	s := Set(1<<63 | 1<<41 | 1<<40 | 1)
	if got := s.upTo(40); got != 1<<40|1 {
		t.Errorf("upTo(40) = %#x", uint64(got))
	}
	if got := s.upTo(63); got != s {
		t.Errorf("upTo(63) = %#x", uint64(got))
	}
	if got := s.upTo(-1); got != 0 {
		t.Errorf("upTo(-1) = %#x", uint64(got))
	}
}
