//go:build tools

// Package flux pins the two Flux controllers the end-to-end tests run.
package flux

import (
	_ "github.com/fluxcd/kustomize-controller"
	_ "github.com/fluxcd/source-controller"
)
