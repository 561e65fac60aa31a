package console

import (
	"net/http"
	"strings"

	"github.com/tripcap/tripcap"
)

// The access page, for Owners: users and service principals, and their
// role assignments (Azure RBAC's roles, at a scope: "*", a location, a
// label, a host). The identity service decides (access/write); the page is
// offered to whom holds it.

func (c *Console) accessPage() {
	if c.cfg.Identity == nil {
		return
	}
	c.nav(navAccess, "Access", "/access", tripcap.PermAccessWrite)
	c.get("/access", c.accessList)
	c.post("/access/users", c.accessCreateUser)
	c.post("/access/service-principals", c.accessCreateService)
	c.post("/access/assignments", c.accessAssign)
	c.post("/access/assignments/{assignment}/delete", c.accessUnassign)
	c.post("/access/principals/{principal}/delete", c.accessDeletePrincipal)
}

type accessData struct {
	Principals  []*tripcap.PrincipalRecord
	Assignments map[string][]*tripcap.RoleAssignment
	// Others are assignments of principals not listed (the bootstrap
	// admin, agents).
	Others []*tripcap.RoleAssignment
	Roles  []tripcap.RoleName
	Error  *formError
	Notice string
	// Secret is a new service principal's client secret, shown once.
	ClientID, Secret string
}

func (c *Console) accessList(w http.ResponseWriter, r *http.Request) error {
	return c.renderAccess(w, r, http.StatusOK, accessData{Notice: notice(r)})
}

func (c *Console) renderAccess(w http.ResponseWriter, r *http.Request, status int, d accessData) error {
	ctx := r.Context()
	ps, err := c.cfg.Identity.FindPrincipals(ctx, "")
	if err != nil {
		return err
	}
	as, err := c.cfg.Identity.FindRoleAssignments(ctx, "")
	if err != nil {
		return err
	}
	d.Principals, d.Roles, d.Assignments = ps, tripcap.RoleNames(), map[string][]*tripcap.RoleAssignment{}
	known := map[string]bool{}
	for _, p := range ps {
		known[p.ID] = true
	}
	for _, a := range as {
		if known[a.PrincipalID] {
			d.Assignments[a.PrincipalID] = append(d.Assignments[a.PrincipalID], a)
		} else {
			d.Others = append(d.Others, a)
		}
	}
	c.renderStatus(w, r, status, "access", d)
	return nil
}

// accessFailed shows a refused change over the page, with the field named.
func (c *Console) accessFailed(w http.ResponseWriter, r *http.Request, err error) error {
	if code := tripcap.ErrorCode(err); code == tripcap.EINVALID || code == tripcap.ECONFLICT {
		return c.renderAccess(w, r, http.StatusBadRequest, accessData{Error: newFormError(err)})
	}
	return err
}

func accessDone(w http.ResponseWriter, r *http.Request, key string) error {
	done(w, r, "/access", key)
	return nil
}

func (c *Console) accessCreateUser(w http.ResponseWriter, r *http.Request) error {
	v := postForm(r)
	_, err := c.cfg.Identity.CreateUser(r.Context(), strings.TrimSpace(v.Get("name")), v.Get("password"))
	if err != nil {
		return c.accessFailed(w, r, err)
	}
	return accessDone(w, r, "user-created")
}

func (c *Console) accessCreateService(w http.ResponseWriter, r *http.Request) error {
	sp, err := c.cfg.Identity.CreateServicePrincipal(r.Context(), strings.TrimSpace(postForm(r).Get("name")))
	if err != nil {
		return c.accessFailed(w, r, err)
	}
	// The client secret exists only in this answer.
	return c.renderAccess(w, r, http.StatusOK, accessData{Notice: "Service principal " + sp.Name + " created.", ClientID: sp.ClientID, Secret: sp.ClientSecret})
}

func (c *Console) accessAssign(w http.ResponseWriter, r *http.Request) error {
	v := postForm(r)
	scope := strings.TrimSpace(v.Get("scope"))
	if scope == "" {
		scope = string(tripcap.ScopeAll)
	}
	_, err := c.cfg.Identity.AssignRole(r.Context(), v.Get("principal"), tripcap.RoleName(v.Get("role")), tripcap.Scope(scope))
	if err != nil {
		return c.accessFailed(w, r, err)
	}
	return accessDone(w, r, "role-assigned")
}

func (c *Console) accessUnassign(w http.ResponseWriter, r *http.Request) error {
	if err := c.cfg.Identity.DeleteRoleAssignment(r.Context(), r.PathValue("assignment")); err != nil {
		return c.accessFailed(w, r, err)
	}
	return accessDone(w, r, "assignment-removed")
}

func (c *Console) accessDeletePrincipal(w http.ResponseWriter, r *http.Request) error {
	if err := c.cfg.Identity.DeletePrincipal(r.Context(), r.PathValue("principal")); err != nil {
		return c.accessFailed(w, r, err)
	}
	return accessDone(w, r, "principal-deleted")
}
