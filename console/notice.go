package console

import "net/http"

// notices are what a page shows after a change it redirected from
// (?done=KEY): fixed texts by key, so that a link cannot make the console
// say what its author likes. An unknown key shows nothing.
var notices = map[string]string{
	"user-created":         "User created; give them a role below.",
	"role-assigned":        "Role assigned.",
	"assignment-removed":   "Role assignment removed.",
	"principal-deleted":    "Principal deleted; its tokens no longer work.",
	"action-group-deleted": "Action group deleted.",
	"responder-created":    "Responder created.",
	"responder-deleted":    "Responder deleted.",
	"rule-created":         "Rule created.",
	"rule-saved":           "Rule saved.",
	"rule-enabled":         "Rule enabled.",
	"rule-disabled":        "Rule disabled.",
	"rule-silenced":        "Rule silenced.",
	"silence-ended":        "Silence ended.",
	"rule-deleted":         "Rule deleted.",
	"storage-added":        "Storage account added.",
	"storage-forgotten":    "Storage account forgotten; its files stay where they are.",
}

// notice is the text of the request's ?done= key, or "".
func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

// done sends the browser to path (which has no query) to show the notice of key.
func done(w http.ResponseWriter, r *http.Request, path, key string) {
	if _, ok := notices[key]; !ok {
		panic("console: no notice " + key) // a programming error, caught by the pages' tests
	}
	http.Redirect(w, r, path+"?done="+key, http.StatusSeeOther)
}
