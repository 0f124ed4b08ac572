//go:build tools

// The Helm CLI, built from its Go module for the chart tests (as kubectl and the test control
// plane are): build.sh builds it into .cache/bin, cached by hash.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
