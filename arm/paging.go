package arm

import (
	"net/http"
	"strconv"
)

// List is ARM's list answer. A nextLink, when present, is the absolute URL
// of the next page; absent ends paging.
type List[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// SkipToken is the request's $skipToken ("" on a first page).
func (r *Request) SkipToken() string { return r.URL.Query().Get("$skipToken") }

// PageSize is how many items a page holds.
func (r *Request) PageSize() int { return r.api.pageSize }

// WritePage answers 200 with items and, when next is not "", a nextLink:
// this request's absolute URL with $skipToken=next (its other parameters,
// api-version included, kept).
func WritePage[T any](w http.ResponseWriter, r *Request, items []T, next string) error {
	l := List[T]{Value: items}
	if l.Value == nil {
		l.Value = []T{}
	}
	if next != "" {
		q := r.URL.Query()
		q.Set("$skipToken", next)
		l.NextLink = r.AbsURL(r.URL.Path, q)
	}
	return WriteJSON(w, http.StatusOK, l)
}

// Paginate cuts the page the request's $skipToken asks for out of all (a
// list the provider holds whole, in a stable order) and returns the token
// of the next page, "" on the last.
func Paginate[T any](r *Request, all []T) (page []T, next string, err error) {
	from := 0
	if t := r.SkipToken(); t != "" {
		if from, err = strconv.Atoi(t); err != nil || from < 0 {
			return nil, "", BadRequest("InvalidSkipToken", "$skipToken", "The $skipToken '%.64s' is not one this server gave.", t)
		}
	}
	from = min(from, len(all))
	to := min(from+r.PageSize(), len(all))
	if to < len(all) {
		next = strconv.Itoa(to)
	}
	return all[from:to], next, nil
}
