package console

import "time"

// SetClock sets the console's clock, for tests.
func (c *Console) SetClock(now func() time.Time) { c.cfg.Now = now }
