package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

//go:embed templates/*.html
var templateFS embed.FS

// base are the templates every page is parsed with.
var base = []string{"templates/layout.html", "templates/parts.html"}

// parseTemplates parses each page's template with the layout, by page name
// (the file's name without .html).
func parseTemplates() (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, append(base, f)...)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"bytes":   humanBytes,
	"ago":     ago,
	"time":    func(t time.Time) string { return utc(t) },
	"join":    strings.Join,
	"elapsed": func(d time.Duration) string { return d.Round(time.Second).String() },
	"asset":   assetPath,
	"host":    hostPath,
	"field":   newField,
	"list":    func(s ...string) []string { return s },
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"labels": labelList,
}

// view is what every template executes on.
type view struct {
	// Page is the page's own data.
	Page any
	// Name is the page's template name (its data-page, for its script).
	Name string
	User *tripcap.Principal
	CSRF string
	Nav  []navEntry
	// Path is the request's path, for the nav's current entry.
	Path string
}

// Can reports whether the signed-in caller holds perm at some scope: the
// template's test for offering an action (the service decides).
func (v view) Can(perm string) bool { return v.User.CanSome(tripcap.Permission(perm)) }

// CanAll reports whether the caller holds perm at "*" (resources not tied
// to a host: rules, responders, storage accounts, principals).
func (v view) CanAll(perm string) bool { return v.User.Can(tripcap.Permission(perm), nil) }

// CanOn reports whether the caller holds perm at a scope covering h.
func (v view) CanOn(perm string, h *tripcap.Host) bool {
	return v.User.Can(tripcap.Permission(perm), h)
}

// render answers the page name with data, 200.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, data any) error {
	c.renderStatus(w, r, http.StatusOK, name, data)
	return nil
}

// renderStatus answers the page name with data. The page is executed into
// a buffer first, so a template failure answers 500, not half a page.
func (c *Console) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t := c.pages[name]
	if t == nil {
		c.log.Error("no such console template", "template", name)
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	v := view{Page: data, Name: name, Path: r.URL.Path}
	if s := sessionOf(r.Context()); s != nil {
		v.User, v.CSRF = s.p, s.csrf
		for _, n := range c.navs {
			if s.p.CanSome(n.perm) {
				n.Current = n.Path == r.URL.Path || n.Path != "/" && strings.HasPrefix(r.URL.Path, n.Path+"/")
				v.Nav = append(v.Nav, n)
			}
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("rendering a console page", "template", name, "err", err)
		http.Error(w, "the page failed to render; it is in the server's log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show what the caller may see now: never from a cache.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fieldError is a form's error as a script receives it: the field the
// service named, and its message.
type fieldError struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// errorField is the field a service's EINVALID message names: the text
// before its first ": " when that is a field's path ("filters[0].protocol").
func errorField(msg string) string {
	f, _, ok := strings.Cut(msg, ": ")
	if !ok || f == "" || len(f) > 80 || strings.ContainsAny(f, " \t\"'") {
		return ""
	}
	return f
}

// formError is a form's error for its template: the message, and the field
// it names (highlighted beside it).
type formError struct{ fieldError }

// newFormError makes err a form's error.
func newFormError(err error) *formError {
	msg := tripcap.ErrorMessage(err)
	return &formError{fieldError{Field: errorField(msg), Message: msg}}
}

// For reports whether the error is about the field (or one inside it).
func (e *formError) For(field string) bool {
	return e != nil && e.Field != "" && (e.Field == field || strings.HasPrefix(e.Field, field+".") || strings.HasPrefix(e.Field, field+"["))
}

// fieldView is a labelled input of a form (the "field" template).
type fieldView struct {
	ID, Name, Label, Value, ErrorField, Help, Message string
	Invalid                                           bool
}

// newField makes a form's input: its name, label and value, the name the
// service's errors give it (errorField, "" when it is name), the form's
// error (marking the input when it names it), and a help text.
func newField(name, label, value, errorField string, err *formError, help string) fieldView {
	if errorField == "" {
		errorField = name
	}
	f := fieldView{ID: strings.NewReplacer("[", "-", "]", "-", ".", "-").Replace(name), Name: name, Label: label, Value: value, ErrorField: errorField, Help: help}
	if err.For(errorField) {
		f.Invalid, f.Message = true, err.Message
	}
	return f
}

// wantsJSON reports whether the caller is the console's script (it asks
// for JSON), not a browser's navigation.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// humanBytes is a size in bytes for people; any integer type.
func humanBytes(n any) string {
	switch v := n.(type) {
	case int64:
		return tripcap.HumanBytes(uint64(max(v, 0)))
	case uint64:
		return tripcap.HumanBytes(v)
	case int:
		return tripcap.HumanBytes(uint64(max(v, 0)))
	}
	return fmt.Sprint(n)
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ago is how long before now t was, roughly.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
