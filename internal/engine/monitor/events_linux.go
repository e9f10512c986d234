package monitor

import "cove/internal/engine/events"

// emit appends a container event to the store's journal (best effort).
func (m *monitor) emit(action string, attrs map[string]string) {
	if m.cfg.CoveRoot == "" {
		return
	}
	events.Append(m.cfg.CoveRoot, events.Event{Type: "container", Action: action, ID: m.cfg.ID, Attributes: attrs})
}
