package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// procCPU returns a process's CPU time (user + system) from /proc/<pid>/stat;
// with children, also that of its waited-for children (cutime, cstime).
func procCPU(pid int, children bool) (time.Duration, error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	// After the command name: state is field 3, so utime (14) is f[11].
	n := 2
	if children {
		n = 4
	}
	var ticks uint64
	for _, s := range f[11 : 11+n] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// procStatFields returns /proc/<pid>/stat's fields from the state on (field 3).
func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// treeCPU is the CPU time of a process and its children: the live ones'
// own, plus what the exited ones left in the parent's cutime/cstime. It
// measures PostgreSQL, whose postmaster forks a backend per connection.
func treeCPU(root int) (time.Duration, error) {
	total, err := procCPU(root, true)
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		f, err := procStatFields(pid)
		if err != nil || f[1] != strconv.Itoa(root) { // f[1] is the parent pid
			continue
		}
		if d, err := procCPU(pid, false); err == nil {
			total += d
		}
	}
	return total, nil
}

// machineCPU returns the busy and total CPU time of all cores, from /proc/stat.
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var ticks [10]uint64
	for i := 1; i < len(f) && i <= 10; i++ {
		ticks[i-1], _ = strconv.ParseUint(f[i], 10, 64)
	}
	// user nice system idle iowait irq softirq steal guest guest_nice; guest
	// time is already in user.
	var all uint64
	for _, t := range ticks[:8] {
		all += t
	}
	idle := ticks[3] + ticks[4]
	return time.Duration(all-idle) * time.Second / clockTicks, time.Duration(all) * time.Second / clockTicks, nil
}

// procRSS returns a process's resident memory in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procNofile returns a process's RLIMIT_NOFILE soft limit, from /proc/<pid>/limits.
func procNofile(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(line)
			if len(f) >= 4 {
				return f[3]
			}
		}
	}
	return "?"
}

// cpuSample is the CPU clocks at one moment.
type cpuSample struct {
	at                  time.Time
	server, db, bench   time.Duration
	coordinator         time.Duration // the bench process itself: part of bench
	machine, machineAll time.Duration
}

// cpuUsage is CPU use over a window, in cores (1.0 is one core busy).
type cpuUsage struct {
	Server float64 `json:"serverCores"`
	// DB is PostgreSQL's processes (zero for SQLite, which runs inside the server).
	DB    float64 `json:"dbCores"`
	Bench float64 `json:"benchCores"`
	// Coordinator is the bench process's own share of Bench (its API
	// probes, the workers' snapshots); the rest is the simulated agents.
	Coordinator float64 `json:"coordinatorCores"`
	// Machine is the fraction of all cores busy, everything included.
	Machine float64 `json:"machineBusy"`
}

func (a cpuSample) until(b cpuSample) cpuUsage {
	wall := b.at.Sub(a.at).Seconds()
	u := cpuUsage{
		Server:      (b.server - a.server).Seconds() / wall,
		DB:          (b.db - a.db).Seconds() / wall,
		Bench:       (b.bench - a.bench).Seconds() / wall,
		Coordinator: (b.coordinator - a.coordinator).Seconds() / wall,
	}
	if all := b.machineAll - a.machineAll; all > 0 {
		u.Machine = float64(b.machine-a.machine) / float64(all)
	}
	return u
}

// procFDs counts a process's open file descriptors.
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}
