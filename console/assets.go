package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
)

// assetFS holds the console's own scripts and styles and the vendored
// libraries (assets/vendor, reproduced by assets/vendor.sh from npm).
//
//go:embed assets/*.css assets/*.js assets/*.svg assets/vendor/*/*.js assets/vendor/*/*.css assets/vendor/*/LICENSE
var assetFS embed.FS

// assetVersion is a digest of every asset: their URLs carry it, so a
// browser caches them for good and a new build's are fetched anew.
var assetVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// assetPath is the URL of an asset ("console.js", "vendor/uplot/uPlot.iife.min.js").
func assetPath(name string) string { return "/assets/" + assetVersion + "/" + name }

func (c *Console) assetRoutes() {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.FileServerFS(sub)
	// Browsers ask for /favicon.ico whatever the page says.
	c.mux.Handle("GET /favicon.ico", http.RedirectHandler(assetPath("favicon.svg"), http.StatusMovedPermanently))
	c.mux.Handle("GET /assets/{version}/{file...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("version") != assetVersion {
			// An old page's asset after an upgrade: the current one.
			http.Redirect(w, r, assetPath(r.PathValue("file")), http.StatusFound)
			return
		}
		name := r.PathValue("file")
		if strings.HasSuffix(name, "/") || name == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		files.ServeHTTP(w, r2)
	}))
}
