//! Table printers: upstream's column sets (`pkg/printers/internalversion/printers.go`).
