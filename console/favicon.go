package console

import (
	_ "embed"
	"net/http"
)

// favicon is the console's icon. Browsers ask for /favicon.ico whatever a
// page says; a 404 there would be an error in every page's console.
//
//go:embed assets/favicon.svg
var favicon []byte

func (c *Console) faviconRoute() {
	c.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(favicon)
	})
}
