package arm

// networkVersions are Microsoft.Network's api-versions, from the one the
// 2017 seed sends to the newest of the armnetwork SDK (v9): every one a
// client may send for networkWatchers and packetCaptures.
func networkVersions() []string {
	return []string{
		"2016-03-30", "2016-06-01", "2016-09-01", "2016-12-01",
		"2017-03-01", "2017-06-01", "2017-08-01", "2017-09-01", "2017-10-01", "2017-11-01",
		"2018-01-01", "2018-02-01", "2018-04-01", "2018-06-01", "2018-07-01", "2018-08-01", "2018-10-01", "2018-11-01", "2018-12-01",
		"2019-02-01", "2019-04-01", "2019-06-01", "2019-07-01", "2019-08-01", "2019-09-01", "2019-11-01", "2019-12-01",
		"2020-03-01", "2020-04-01", "2020-05-01", "2020-06-01", "2020-07-01", "2020-08-01", "2020-11-01",
		"2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01",
		"2022-01-01", "2022-05-01", "2022-07-01", "2022-09-01", "2022-11-01",
		"2023-02-01", "2023-04-01", "2023-05-01", "2023-06-01", "2023-09-01", "2023-11-01",
		"2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-10-01",
		"2025-01-01", "2025-03-01", "2025-05-01",
	}
}

// registerNetwork serves Microsoft.Network: networkWatchers and their
// packetCaptures (watchers.go, packetcaptures.go).
func registerNetwork(a *API, svc Services) {
	if svc.Control == nil {
		return
	}
	p := a.Provider("Microsoft.Network", networkVersions()...)
	nw := networkWatchers{svc: svc.Control}
	nw.register(p)
	packetCaptures{svc: svc.Control, watchers: nw, now: a.now}.register(p)
}
