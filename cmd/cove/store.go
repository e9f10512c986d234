package main

import "cove/internal/engine/image"

// openImages opens the image store of --root through the engine, so that
// removing an image checks the containers that use it.
func openImages() (*image.Store, error) {
	e, err := openEngine()
	if err != nil {
		return nil, err
	}
	return e.Images()
}
