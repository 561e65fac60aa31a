package tripcap

import "context"

// AlertRuleFilter selects alert rules in a listing; nil fields select all.
type AlertRuleFilter struct {
	ID *string
	// Name matches regardless of case, as rule names are unique that way.
	Name *string
}

// ActionGroupFilter selects action groups in a listing; nil fields select all.
type ActionGroupFilter struct {
	ID *string
	// Name matches regardless of case, as group names are unique that way.
	Name *string
}

// AlertStore persists metric alert rules, action groups, the alerts rules
// fire and every delivery attempt of those alerts. Store embeds it; sqlite
// and postgres implement it and pass storetest's Alerting subtests.
//
// Rules and action groups are kept whole (every field round-trips, an
// action group's SigningSecret included: the server needs it to sign
// deliveries, so callers strip it before showing a group). Names of rules,
// and of action groups, are unique regardless of case, as ARM's are.
// Errors are *Error with the codes named below; malformed ids are EINVALID,
// unknown ids ENOTFOUND.
type AlertStore interface {
	SilenceStore

	// CreateAlertRule inserts r, whose ID the caller sets, with Version 1; zero
	// CreatedAt/UpdatedAt become now. ECONFLICT when the id or the name
	// (in any case) is taken; EINVALID without an id or a name.
	CreateAlertRule(ctx context.Context, r *AlertRule) error
	// UpdateAlertRule replaces the rule with r.ID (its id and CreatedAt
	// stay) if it is at expectVersion, else EPRECONDITION; it sets
	// UpdatedAt to now and r.Version to the next version. ENOTFOUND when
	// unknown, ECONFLICT when the new name is taken.
	UpdateAlertRule(ctx context.Context, r *AlertRule, expectVersion int64) error
	// FindAlertRules lists the rules f selects, ordered by name.
	FindAlertRules(ctx context.Context, f AlertRuleFilter) ([]*AlertRule, error)
	// FindAlertRule returns the one rule f selects, ENOTFOUND when none.
	FindAlertRule(ctx context.Context, f AlertRuleFilter) (*AlertRule, error)
	// DeleteAlertRule removes a rule; its alerts stay, with their history.
	// ENOTFOUND when unknown.
	DeleteAlertRule(ctx context.Context, id string) error

	// CreateActionGroup inserts g, whose ID (and SigningSecret) the caller
	// sets; zero CreatedAt/UpdatedAt become now. ECONFLICT when the id or
	// the name (in any case) is taken; EINVALID without an id or a name.
	CreateActionGroup(ctx context.Context, g *ActionGroup) error
	// UpdateActionGroup replaces the group with g.ID as UpdateAlertRule
	// does; the caller keeps g.SigningSecret (the control plane copies it
	// from the stored group).
	UpdateActionGroup(ctx context.Context, g *ActionGroup, expectVersion int64) error
	// FindActionGroups lists the groups f selects, ordered by name.
	FindActionGroups(ctx context.Context, f ActionGroupFilter) ([]*ActionGroup, error)
	// FindActionGroup returns the one group f selects, ENOTFOUND when none.
	FindActionGroup(ctx context.Context, f ActionGroupFilter) (*ActionGroup, error)
	// DeleteActionGroup removes a group. ENOTFOUND when unknown. Rules that
	// name it are not checked here (the control plane refuses that).
	DeleteActionGroup(ctx context.Context, id string) error

	// UpsertAlert stores a, inserting it or replacing the alert with its
	// id: an alert is written at every transition (Fired, then Resolved,
	// or Fired and Released). EINVALID without an id, rule id, host id or
	// monitor condition.
	//
	// The store fences replicas: it keeps at most one active alert
	// (Alert.Active) per (rule, host), and a Resolved alert stays
	// resolved. An active a whose (rule, host) has another active alert,
	// or any a whose id the store holds Resolved, is not written: the
	// error is an *AlertFencedError with the alert the store holds. A
	// rewrite of the active alert itself (a retry) is no conflict.
	// FindAlerts and FindAlert return Released as the store holds it.
	UpsertAlert(ctx context.Context, a *Alert) error
	// FindAlerts lists the alerts f selects, newest first (by
	// firedDateTime, then id), at most f.Limit when it is above 0.
	FindAlerts(ctx context.Context, f AlertFilter) ([]*Alert, error)
	// FindAlert returns an alert by id, ENOTFOUND when unknown.
	FindAlert(ctx context.Context, id string) (*Alert, error)

	// AppendDelivery records one delivery attempt of an alert.
	// ENOTFOUND when the alert is unknown.
	AppendDelivery(ctx context.Context, d *Delivery) error
	// FindDeliveries lists an alert's delivery attempts in the order they
	// were recorded (none for an unknown alert).
	FindDeliveries(ctx context.Context, alertID string) ([]*Delivery, error)
}
