package web

// The browser peer is compiled to WebAssembly and committed under static/, so that the page
// works from a fresh clone with nothing but Go (see web/internal/wasmbuild).
//go:generate go run ./internal/genwasm
