package identity

// TakeHashTurns takes every turn to hash a password, as logins under way
// would, until giveBack is called.
func (s *Service) TakeHashTurns() (giveBack func()) {
	for range cap(s.hashing) {
		s.hashing <- struct{}{}
	}
	return func() {
		for range cap(s.hashing) {
			<-s.hashing
		}
	}
}
