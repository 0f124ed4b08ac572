//go:build tools

// actionlint, built from its Go module to lint the release workflow (it cannot run here): see
// build.sh.
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
