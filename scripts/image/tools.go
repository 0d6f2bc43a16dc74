//go:build tools

// Keeps crane (go-containerregistry's CLI, used to validate the archive) in go.mod.
package main

import _ "github.com/google/go-containerregistry/cmd/crane"
