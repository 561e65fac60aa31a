package arm

import (
	"net/http"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/identity"
)

// Microsoft.Authorization: roleDefinitions (tripcap's built-in roles under
// Azure's ids) and roleAssignments (identity.Service's) at subscription,
// resource group and virtual machine scopes. An assignment made here is a
// tripcap role assignment at that ARM id (which covers the hosts in it);
// tripcap's "*" shows as Azure's root scope "/". The identity service
// authorizes (access/write for assignments); role definitions are read by
// any authenticated caller, as they are Azure's published built-ins.
//
// Every assignment shows under a GUID name, as Azure's clients demand one
// in the path: its own id when that is a GUID (made here), else the
// name-based GUID of its tripcap id (made natively), which GET and DELETE
// map back; a tripcap id in the path is accepted too. A caller without
// access/write lists and gets its own assignments only, as the native API
// lets it: Azure would show a Reader everyone's, but tripcap hides who
// holds what from all but Owners at "*" (docs/azure.md).

func authorizationVersions() []string {
	return []string{"2015-07-01", "2018-01-01-preview", "2018-09-01-preview", "2020-04-01-preview", "2020-10-01-preview", "2022-04-01"}
}

// roleDefinitionIDs are the built-in roles' definition ids: Azure's for
// Azure's roles, and a name-based UUID of tripcap's own.
var roleDefinitionIDs = map[tripcap.RoleName]string{
	tripcap.RoleReader:                "acdd72a7-3385-48ef-bd42-f606fba81ae7",
	tripcap.RoleCaptureFileReader:     "675880dd-8df0-5973-9338-058b93ee7c1c",
	tripcap.RoleNetworkContributor:    "4d97b98b-1d4f-4787-a291-c67834d212e7",
	tripcap.RoleMonitoringContributor: "749f88d5-cbae-40b8-bcfc-e573ddc772fa",
	tripcap.RoleContributor:           "b24988ac-6180-42a0-ab88-20f7382dd24c",
	tripcap.RoleOwner:                 "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
}

// roleOfDefinition is the role a roleDefinitionId names (a full id or the
// bare GUID), false for none.
func roleOfDefinition(id string) (tripcap.RoleName, bool) {
	guid := id[strings.LastIndex(id, "/")+1:]
	for r, g := range roleDefinitionIDs {
		if strings.EqualFold(g, guid) {
			return r, true
		}
	}
	return "", false
}

const authz = "/providers/Microsoft.Authorization"

// authzScopes are the scopes the provider serves, as patterns.
var authzScopes = []string{
	"/subscriptions/{subscriptionId}",
	"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}",
	"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachines/{vmName}",
}

// registerAuthorization serves Microsoft.Authorization over the identity service.
func registerAuthorization(a *API, svc Services) {
	if svc.Identity == nil {
		return
	}
	p := a.Provider("Microsoft.Authorization", authorizationVersions()...)
	az := authorization{ids: svc.Identity}
	for i, s := range authzScopes {
		list := [...]string{"RoleAssignments_ListForSubscription", "RoleAssignments_ListForResourceGroup", "RoleAssignments_ListForResource"}[i]
		p.Handle(http.MethodGet, s+authz+"/roleDefinitions", "RoleDefinitions_List", az.listDefinitions)
		p.Handle(http.MethodGet, s+authz+"/roleDefinitions/{roleDefinitionId}", "RoleDefinitions_Get", az.getDefinition)
		p.Handle(http.MethodGet, s+authz+"/roleAssignments", list, az.listAssignments)
		p.Handle(http.MethodPut, s+authz+"/roleAssignments/{roleAssignmentName}", "RoleAssignments_Create", az.create)
		p.Handle(http.MethodGet, s+authz+"/roleAssignments/{roleAssignmentName}", "RoleAssignments_Get", az.get)
		p.Handle(http.MethodDelete, s+authz+"/roleAssignments/{roleAssignmentName}", "RoleAssignments_Delete", az.delete)
	}
}

type authorization struct{ ids *identity.Service }

// roleDefinitionJSON is a roleDefinitions resource.
type roleDefinitionJSON struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"`
	Properties roleDefinitionProperties `json:"properties"`
}

type roleDefinitionProperties struct {
	RoleName         string           `json:"roleName"`
	Type             string           `json:"type"`
	Description      string           `json:"description"`
	AssignableScopes []string         `json:"assignableScopes"`
	Permissions      []rolePermission `json:"permissions"`
}

// rolePermission lists tripcap's permissions as the role's actions.
type rolePermission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

var roleDescriptions = map[tripcap.RoleName]string{
	tripcap.RoleReader:                "Read hosts, captures' records, rules, action groups, responders, alerts and metrics; not packets.",
	tripcap.RoleCaptureFileReader:     "Read, and download capture files.",
	tripcap.RoleNetworkContributor:    "Read, and create, stop and delete packet captures.",
	tripcap.RoleMonitoringContributor: "Read, and change alert rules, action groups, responders and silences.",
	tripcap.RoleContributor:           "Everything but granting access.",
	tripcap.RoleOwner:                 "Everything, granting access included.",
}

func definitionOf(sub string, r tripcap.RoleName) roleDefinitionJSON {
	var actions []string
	for _, p := range tripcap.RolePermissions(r) {
		actions = append(actions, "tripcap/"+string(p))
	}
	g := roleDefinitionIDs[r]
	return roleDefinitionJSON{ID: "/subscriptions/" + sub + authz + "/roleDefinitions/" + g, Name: g, Type: "Microsoft.Authorization/roleDefinitions",
		Properties: roleDefinitionProperties{RoleName: string(r), Type: "BuiltInRole", Description: roleDescriptions[r], AssignableScopes: []string{"/"},
			Permissions: []rolePermission{{Actions: actions, NotActions: []string{}, DataActions: []string{}, NotDataActions: []string{}}}}}
}

// listDefinitions serves RoleDefinitions_List ($filter=roleName eq 'NAME'
// keeps one; type eq 'BuiltInRole' all).
func (az authorization) listDefinitions(w http.ResponseWriter, r *Request) error {
	f, err := ParseFilter(r.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	var out []roleDefinitionJSON
	for _, role := range tripcap.RoleNames() {
		if f.RoleName != "" && !strings.EqualFold(f.RoleName, string(role)) || f.Type != "" && !strings.EqualFold(f.Type, "BuiltInRole") {
			continue
		}
		out = append(out, definitionOf(r.Param("subscriptionId"), role))
	}
	page, next, err := Paginate(r, out)
	if err != nil {
		return err
	}
	return WritePage(w, r, page, next)
}

func (az authorization) getDefinition(w http.ResponseWriter, r *Request) error {
	role, ok := roleOfDefinition(r.Param("roleDefinitionId"))
	if !ok {
		return Errorf(http.StatusNotFound, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", clipped(r.Param("roleDefinitionId")))
	}
	return WriteJSON(w, http.StatusOK, definitionOf(r.Param("subscriptionId"), role))
}

// roleAssignmentJSON is a roleAssignments resource.
type roleAssignmentJSON struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"`
	Properties roleAssignmentProperties `json:"properties"`
}

type roleAssignmentProperties struct {
	RoleDefinitionID string     `json:"roleDefinitionId"`
	PrincipalID      string     `json:"principalId"`
	PrincipalType    string     `json:"principalType,omitempty"`
	Scope            string     `json:"scope"`
	CreatedOn        *time.Time `json:"createdOn,omitempty"`
	UpdatedOn        *time.Time `json:"updatedOn,omitempty"`
	CreatedBy        string     `json:"createdBy,omitempty"`
	UpdatedBy        string     `json:"updatedBy,omitempty"`
}

// createAssignmentBody is RoleAssignments_Create's body.
type createAssignmentBody struct {
	Properties struct {
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
		PrincipalType    string `json:"principalType"`
	} `json:"properties"`
}

// armScope is a tripcap scope as ARM writes it: "*" is the root "/".
func armScope(s tripcap.Scope) string {
	if s == tripcap.ScopeAll {
		return "/"
	}
	return string(s)
}

// pathScope is the scope the request's path names.
func pathScope(r *Request) tripcap.Scope {
	s := "/subscriptions/" + r.Param("subscriptionId")
	if g := r.Param("resourceGroupName"); g != "" {
		s += "/resourceGroups/" + g
	}
	if vm := r.Param("vmName"); vm != "" {
		s += "/providers/Microsoft.Compute/virtualMachines/" + vm
	}
	return tripcap.Scope(s)
}

// scopeRelation tells where an assignment's scope is from the path's:
// the same, above it (root, the subscription of a group…), below it, or
// unrelated (another branch, or a tripcap scope that is no ARM id).
func scopeRelation(assignment tripcap.Scope, path tripcap.Scope) (at, above, below bool) {
	a, p := strings.ToLower(strings.TrimRight(armScope(assignment), "/")), strings.ToLower(string(path))
	if !strings.HasPrefix(armScope(assignment), "/") {
		return false, false, false
	}
	switch {
	case a == p:
		return true, false, false
	case strings.HasPrefix(p, a+"/") || a == "":
		return false, true, false
	case strings.HasPrefix(a, p+"/"):
		return false, false, true
	}
	return false, false, false
}

func (az authorization) assignmentOf(sub string, a *tripcap.RoleAssignment, kind tripcap.PrincipalKind) roleAssignmentJSON {
	scope := armScope(a.Scope)
	prefix := strings.TrimRight(scope, "/")
	created := a.CreatedAt.UTC()
	pt := "ServicePrincipal"
	if kind == tripcap.PrincipalUser {
		pt = "User"
	}
	name := armAssignmentName(a.ID)
	return roleAssignmentJSON{ID: prefix + authz + "/roleAssignments/" + name, Name: name, Type: "Microsoft.Authorization/roleAssignments",
		Properties: roleAssignmentProperties{RoleDefinitionID: "/subscriptions/" + sub + authz + "/roleDefinitions/" + roleDefinitionIDs[a.Role],
			PrincipalID: a.PrincipalID, PrincipalType: pt, Scope: scope, CreatedOn: &created, UpdatedOn: &created, CreatedBy: a.CreatedBy, UpdatedBy: a.CreatedBy}}
}

// assignments are the role assignments the caller may list (every one
// with access/write, else its own; one principal's by $filter=principalId
// eq / assignedTo), with their principals' kinds.
func (az authorization) assignments(r *Request, principal string) ([]*tripcap.RoleAssignment, map[string]tripcap.PrincipalKind, error) {
	if caller := tripcap.PrincipalFromContext(r.Context()); principal == "" && caller != nil && !caller.Can(tripcap.PermAccessWrite, nil) {
		principal = caller.ID
	}
	as, err := az.ids.FindRoleAssignments(r.Context(), principal)
	if err != nil {
		return nil, nil, Recode(err, tripcap.ENOTFOUND, "PrincipalNotFound")
	}
	kinds := map[string]tripcap.PrincipalKind{}
	if principal != "" {
		if p, err := az.ids.FindPrincipal(r.Context(), principal); err == nil {
			kinds[p.ID] = p.Kind
		}
		return as, kinds, nil
	}
	ps, err := az.ids.FindPrincipals(r.Context(), "")
	if err != nil {
		return nil, nil, err
	}
	for _, p := range ps {
		kinds[p.ID] = p.Kind
	}
	return as, kinds, nil
}

// listAssignments serves the RoleAssignments_List… operations: the
// assignments at, above and below the path's scope ($filter=atScope(): at
// and above), of one principal with principalId eq / assignedTo.
func (az authorization) listAssignments(w http.ResponseWriter, r *Request) error {
	f, err := ParseFilter(r.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	as, kinds, err := az.assignments(r, f.PrincipalID)
	if err != nil {
		return err
	}
	scope := pathScope(r)
	var out []roleAssignmentJSON
	for _, a := range as {
		at, above, below := scopeRelation(a.Scope, scope)
		if at || above || below && !f.AtScope {
			out = append(out, az.assignmentOf(r.Param("subscriptionId"), a, kinds[a.PrincipalID]))
		}
	}
	page, next, err := Paginate(r, out)
	if err != nil {
		return err
	}
	return WritePage(w, r, page, next)
}

// assignmentNamespace is the RFC 9562 namespace of the GUID names of
// assignments whose tripcap id is no GUID (a fixed random GUID: the names
// must not change between releases or replicas).
var assignmentNamespace = [16]byte{0x3c, 0x1f, 0x5e, 0x0a, 0x8b, 0x27, 0x4d, 0x61, 0x9e, 0x43, 0xd2, 0x70, 0x15, 0xa8, 0xc6, 0x9b}

// armAssignmentName is the GUID an assignment shows under: its id when
// that is a GUID, else the name-based GUID of its id.
func armAssignmentName(id string) string {
	if tripcap.IsGUID(id) {
		return strings.ToLower(id)
	}
	return tripcap.NameGUID(assignmentNamespace, id)
}

// assignmentName is the path's assignment name: a GUID, in lower case.
func assignmentName(r *Request) (string, error) {
	n := strings.ToLower(r.Param("roleAssignmentName"))
	if !tripcap.IsGUID(n) {
		return "", BadRequest("InvalidRoleAssignmentId", "roleAssignmentName", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", clipped(n))
	}
	return n, nil
}

// find is the assignment the path names (its GUID name, or its tripcap
// id), nil when none is at its scope. A name that is neither a GUID nor
// an assignment's id is a 400 InvalidRoleAssignmentId.
func (az authorization) find(r *Request) (*tripcap.RoleAssignment, map[string]tripcap.PrincipalKind, error) {
	name := r.Param("roleAssignmentName")
	as, kinds, err := az.assignments(r, "")
	if err != nil {
		return nil, nil, err
	}
	guid, known := tripcap.IsGUID(name), false
	for _, a := range as {
		if guid && !strings.EqualFold(armAssignmentName(a.ID), name) || !guid && a.ID != name {
			continue
		}
		known = true
		if at, _, _ := scopeRelation(a.Scope, pathScope(r)); at {
			return a, kinds, nil
		}
	}
	if !guid && !known {
		_, err := assignmentName(r)
		return nil, nil, err
	}
	return nil, kinds, nil
}

func (az authorization) get(w http.ResponseWriter, r *Request) error {
	a, kinds, err := az.find(r)
	if err != nil {
		return err
	}
	if a == nil {
		return Errorf(http.StatusNotFound, "RoleAssignmentNotFound", "The role assignment '%s' is not found.", clipped(r.Param("roleAssignmentName")))
	}
	return WriteJSON(w, http.StatusOK, az.assignmentOf(r.Param("subscriptionId"), a, kinds[a.PrincipalID]))
}

// create serves RoleAssignments_Create: 201 with the assignment; the same
// assignment again is 200; another under the name, 409
// RoleAssignmentUpdateNotPermitted; the principal already holding the
// role there, 409 RoleAssignmentExists.
func (az authorization) create(w http.ResponseWriter, r *Request) error {
	name, err := assignmentName(r)
	if err != nil {
		return err
	}
	var in createAssignmentBody
	if err := r.Decode(&in); err != nil {
		return err
	}
	if in.Properties.RoleDefinitionID == "" {
		return BadRequest("InvalidRequestFormat", "properties.roleDefinitionId", "properties.roleDefinitionId: required.")
	}
	if in.Properties.PrincipalID == "" {
		return BadRequest("InvalidRequestFormat", "properties.principalId", "properties.principalId: required.")
	}
	role, ok := roleOfDefinition(in.Properties.RoleDefinitionID)
	if !ok {
		return BadRequest("RoleDefinitionDoesNotExist", "properties.roleDefinitionId", "The specified role definition with ID '%s' does not exist.", clipped(in.Properties.RoleDefinitionID))
	}
	scope := pathScope(r)
	if existing, kinds, err := az.find(r); err != nil {
		return err
	} else if existing != nil {
		if existing.Role == role && existing.PrincipalID == in.Properties.PrincipalID {
			return WriteJSON(w, http.StatusOK, az.assignmentOf(r.Param("subscriptionId"), existing, kinds[existing.PrincipalID]))
		}
		return Errorf(http.StatusConflict, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	}
	a, err := az.ids.AssignRoleWithID(r.Context(), name, in.Properties.PrincipalID, role, scope)
	switch tripcap.ErrorCode(err) {
	case "":
	case tripcap.ENOTFOUND:
		return BadRequest("PrincipalNotFound", "properties.principalId", "Principal %s does not exist in the directory.", clipped(in.Properties.PrincipalID))
	case tripcap.ECONFLICT:
		return Errorf(http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists (or its name is taken at another scope).")
	default:
		return err
	}
	p, err := az.ids.FindPrincipal(r.Context(), a.PrincipalID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, az.assignmentOf(r.Param("subscriptionId"), a, p.Kind))
}

// delete serves RoleAssignments_Delete: 200 with what was deleted, 204
// when there was none.
func (az authorization) delete(w http.ResponseWriter, r *Request) error {
	a, kinds, err := az.find(r)
	if err != nil {
		return err
	}
	if a == nil {
		// One the caller cannot see may exist: who may not delete learns
		// nothing from a 204.
		if err := tripcap.Authorize(r.Context(), tripcap.PermAccessWrite, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err := az.ids.DeleteRoleAssignment(r.Context(), a.ID); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, az.assignmentOf(r.Param("subscriptionId"), a, kinds[a.PrincipalID]))
}

// Filter is what an Authorization $filter asks: the conditions Azure's
// clients send (roleName eq 'NAME', type eq 'BuiltInRole',
// principalId eq 'ID', assignedTo('ID'), atScope()), joined by "and".
type Filter struct {
	RoleName    string
	Type        string
	PrincipalID string
	AtScope     bool
}

// ParseFilter reads a $filter; another condition is a 400 InvalidFilter
// naming it.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	if len(s) > 1024 {
		return f, BadRequest("InvalidFilter", "$filter", "The $filter is longer than 1024 characters.")
	}
	for _, c := range splitAnd(s) {
		c = strings.TrimSpace(c)
		switch {
		case strings.EqualFold(c, "atScope()"):
			f.AtScope = true
			continue
		case hasPrefixFold(c, "assignedTo(") && strings.HasSuffix(c, ")"):
			v, ok := quoted(c[len("assignedTo(") : len(c)-1])
			if ok && f.PrincipalID == "" {
				f.PrincipalID = v
				continue
			}
		default:
			key, val, ok := strings.Cut(c, " ")
			op, val, ok2 := strings.Cut(strings.TrimSpace(val), " ")
			v, ok3 := quoted(strings.TrimSpace(val))
			if ok && ok2 && ok3 && strings.EqualFold(op, "eq") {
				var dst *string
				switch strings.ToLower(key) {
				case "rolename":
					dst = &f.RoleName
				case "type":
					dst = &f.Type
				case "principalid":
					dst = &f.PrincipalID
				}
				if dst != nil && *dst == "" {
					*dst = v
					continue
				}
			}
		}
		return f, BadRequest("InvalidFilter", "$filter", "The filter condition '%s' is not supported: use roleName eq 'NAME', type eq 'BuiltInRole', principalId eq 'ID', assignedTo('ID') or atScope(), joined by 'and', each once.", clipped(c))
	}
	return f, nil
}

// splitAnd splits s at " and " outside quotes.
func splitAnd(s string) []string {
	var parts []string
	in, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			in = !in
		case !in && i+5 <= len(s) && strings.EqualFold(s[i:i+5], " and "):
			parts = append(parts, s[start:i])
			start = i + 5
			i += 4
		}
	}
	return append(parts, s[start:])
}

// quoted is the value of a single-quoted OData string (” is a quote).
func quoted(s string) (string, bool) {
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", false
	}
	inner := s[1 : len(s)-1]
	if strings.Count(strings.ReplaceAll(inner, "''", ""), "'") != 0 {
		return "", false
	}
	return strings.ReplaceAll(inner, "''", "'"), true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// clipped shortens what a caller sent before it goes in a message.
func clipped(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
