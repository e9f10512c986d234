package engine

import "cove/internal/engine/events"

// emit appends an event to the store's journal (best effort: a failed
// write never fails the operation).
func (e *Engine) emit(typ, action, id string, attrs map[string]string) {
	events.Append(e.cfg.Root, events.Event{Type: typ, Action: action, ID: id, Attributes: attrs})
}

// Emit is emit for the CLI's own events (volume create and destroy).
func (e *Engine) Emit(typ, action, id string, attrs map[string]string) {
	e.emit(typ, action, id, attrs)
}
