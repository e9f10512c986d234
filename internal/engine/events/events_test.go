package events

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAppendRead(t *testing.T) {
	root := t.TempDir()
	t0 := time.Now()
	for _, a := range []string{"create", "start", "die"} {
		if err := Append(root, Event{Type: "container", Action: a, ID: "c1"}); err != nil {
			t.Fatal(err)
		}
	}
	Append(root, Event{Type: "volume", Action: "create", ID: "v", TimeNano: t0.Add(-time.Hour).UnixNano()})
	// A half-written line is skipped until complete.
	f, _ := os.OpenFile(filepath.Join(root, File), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"Type":"container","Act`)
	f.Close()
	var got []string
	err := Read(context.Background(), root, Options{Since: t0.Add(-time.Minute),
		Match: func(e *Event) bool { return e.Type == "container" }}, func(e *Event) error {
		got = append(got, e.Action)
		return nil
	})
	if err != nil || len(got) != 3 || got[0] != "create" || got[2] != "die" {
		t.Fatalf("Read: %v %v", got, err)
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, File)
	os.WriteFile(p, make([]byte, MaxSize+1), 0o600) // rotated on the next append
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan []string)
	go func() {
		var got []string
		Read(ctx, root, Options{Follow: true}, func(e *Event) error {
			got = append(got, e.Action)
			if len(got) == 2 {
				cancel()
			}
			return nil
		})
		done <- got
	}()
	time.Sleep(200 * time.Millisecond)
	Append(root, Event{Type: "container", Action: "start", ID: "c"})
	time.Sleep(200 * time.Millisecond)
	Append(root, Event{Type: "container", Action: "die", ID: "c"})
	if got := <-done; len(got) != 2 || got[0] != "start" || got[1] != "die" {
		t.Fatalf("followed %v", got)
	}
	if _, err := os.Stat(p + ".1"); err != nil {
		t.Errorf("no rotation: %v", err)
	}
}
