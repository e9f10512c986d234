package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"cove/internal/engine/container"
	"cove/internal/engine/monitor"
)

// Update changes a stored container's options with change (resource
// limits, restart policy, --storage-opt size=), checks them, resizes the
// writable layer, applies the limits to the running container through the
// runtime's `update --resources -`, and only then saves the record: a
// refused update changes nothing, except that a resize done before the
// runtime refused the limits stays (and the record says so). A new restart
// policy reaches the running supervisor through monitor.PolicyFile.
func (e *Engine) Update(r *container.Record, change func(*RunOptions) error) error {
	unlock, err := e.lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := e.Containers.Get(r.ID)
	if err != nil {
		return err
	}
	o, err := Options(cur.Options)
	if err != nil {
		return err
	}
	old := StorageOptions{StorageOpt: maps.Clone(o.StorageOpt)}
	if err := change(o); err != nil {
		return err
	}
	if _, err := o.StorageSize(); err != nil {
		return err
	}
	if err := o.Resources.Check(); err != nil {
		return err
	}
	if _, _, err := RestartPolicy(o.Restart); err != nil {
		return err
	}
	if o.AutoRemove && o.Restart != "" && o.Restart != "no" {
		return fmt.Errorf("--restart: container %s was started with --rm", cur.Name)
	}
	if err := e.resizeStorage(cur, &old, &o.StorageOptions); err != nil {
		return err
	}
	if e.State(cur).Running {
		lr, err := o.Resources.Linux()
		if err != nil {
			return err
		}
		b, err := json.Marshal(lr)
		if err != nil {
			return fmt.Errorf("encode resources: %w", err)
		}
		cmd := exec.Command(o.Runtime, "--root", e.RuntimeRoot(o.Runtime), "update", "--resources", "-", cur.ID)
		cmd.Stdin = bytes.NewReader(b)
		if out, err := cmd.CombinedOutput(); err != nil {
			msg := strings.TrimSpace(string(out))
			if msg == "" {
				msg = err.Error()
			}
			if !maps.Equal(old.StorageOpt, o.StorageOpt) {
				// The layer was resized: record that much.
				if prev, err := Options(cur.Options); err == nil {
					prev.StorageOpt = o.StorageOpt
					if raw, err := encodeOptions(prev); err == nil {
						cur.Options = raw
						e.Containers.Put(cur)
					}
				}
			}
			return fmt.Errorf("update container %s: %s", cur.Name, msg)
		}
	}
	raw, err := encodeOptions(o)
	if err != nil {
		return err
	}
	cur.Options = raw
	if err := e.Containers.Put(cur); err != nil {
		return fmt.Errorf("save container %s: %w", cur.Name, err)
	}
	if err := e.writeRestartPolicy(cur.ID, o.Restart); err != nil {
		return err
	}
	e.emit("container", "update", cur.ID, map[string]string{"name": cur.Name, "image": cur.Image})
	return nil
}

// writeRestartPolicy tells the container's supervisor (now or later) the
// restart policy, through monitor.PolicyFile.
func (e *Engine) writeRestartPolicy(id, policy string) error {
	name, max, err := RestartPolicy(policy)
	if err != nil {
		return err
	}
	p := filepath.Join(e.Containers.Path(id), monitor.PolicyFile)
	if err := container.WriteFileAtomic(p, []byte(name+" "+strconv.Itoa(max)+"\n"), 0o600); err != nil {
		return fmt.Errorf("save restart policy: %w", err)
	}
	return nil
}
