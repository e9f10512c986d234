package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"strings"

	"cove/internal/engine/container"
)

// Update changes a stored container's options with change (resource
// limits, restart policy, --storage-opt size=), checks them, resizes the
// writable layer, applies the limits to the running container through the
// runtime's `update --resources -`, and only then saves the record: a
// refused update changes nothing (but a resize done before a refused
// resource update stays, and is recorded). A new restart
// policy takes effect at the next start (the running supervisor keeps its
// own).
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
	e.emit("container", "update", cur.ID, map[string]string{"name": cur.Name, "image": cur.Image})
	return nil
}
