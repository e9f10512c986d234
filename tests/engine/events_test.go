package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// cove events follows the journal: a container's life (with its OOM kill)
// and a volume's, in order, filtered.
func TestEngineEvents(t *testing.T) {
	skipWithoutV1(t, "memory")
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := e.command(ctx, "events", "--format", "json", "--filter", "type=container", "--filter", "container=cengev")
	var out bytes.Buffer
	follow.Stdout = &out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the follower has read the journal's end
	e.cove("run", "--name", "cengev", "--memory", "16m", img, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	e.mustCove("update", "--pids-limit", "9", "cengev")
	e.mustCove("rm", "cengev")
	e.mustCove("run", "--rm", "--name", "cengev-other", img, "true")
	e.mustCove("volume", "create", "cengev-vol")
	e.mustCove("volume", "rm", "cengev-vol")
	time.Sleep(400 * time.Millisecond)
	cancel()
	follow.Wait()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev struct {
			Action     string
			Attributes map[string]string
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("events --format json line %q: %v", line, err)
		}
		if ev.Attributes["name"] != "cengev" {
			t.Errorf("filter container=cengev let through %q", line)
		}
		got = append(got, ev.Action)
	}
	if want := "create start oom die update destroy"; strings.Join(got, " ") != want {
		t.Errorf("followed events %q, want %q\n%s", strings.Join(got, " "), want, out.String())
	}
	// Past events, without following.
	vol := e.mustCove("events", "--since", "1m", "--until", "0s", "--filter", "type=volume")
	if !strings.Contains(vol, "volume create cengev-vol") || !strings.Contains(vol, "volume destroy cengev-vol") {
		t.Errorf("events --since --until --filter type=volume:\n%s", vol)
	}
	if strings.Contains(vol, "container") {
		t.Errorf("type=volume showed container events:\n%s", vol)
	}
}
