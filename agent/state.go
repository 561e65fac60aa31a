package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/atomicfile"
)

// identity is the agent's enrollment, kept in the state directory (mode 0600).
type identity struct {
	Server     string `json:"server"`
	HostID     string `json:"hostId"`
	Name       string `json:"name"`
	Credential string `json:"credential"`
}

func (a *Agent) identityPath() string { return filepath.Join(a.cfg.StateDir, "agent.json") }

func (a *Agent) loadIdentity() (*identity, error) {
	b, err := os.ReadFile(a.identityPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read agent identity: %w", err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("agent identity %s is corrupt: %w", a.identityPath(), err)
	}
	return &id, nil
}

func (a *Agent) saveIdentity(id *identity) error {
	b, _ := json.MarshalIndent(id, "", "  ")
	return atomicfile.Write(a.identityPath(), b, 0o600)
}

// journalEntry is what the agent remembers of one session, on disk, so that a
// session's results survive an agent crash or restart until the server has them.
type journalEntry struct {
	Assignment tripcap.Assignment `json:"assignment"`
	Path       string             `json:"path"`
	// Keep is set when the user asked for a file on the host (filePath/localPath):
	// the files stay after upload.
	Keep bool `json:"keep"`
	// Final is the session's final report, set once it ended.
	Final *tripcap.SessionReport `json:"final,omitempty"`
	// Reported is set once the server accepted Final.
	Reported bool `json:"reported"`
	// Uploaded maps file names to the SHA-256 the server stored.
	Uploaded map[string]string `json:"uploaded,omitempty"`
	// Targets keeps each file's direct-upload target, so that an upload
	// interrupted by a restart resumes instead of starting over.
	Targets map[string]*tripcap.UploadTarget `json:"targets,omitempty"`
	// Failed maps files storage refused for good to the reason; they stay
	// in the spool.
	Failed map[string]string `json:"failed,omitempty"`
}

func (a *Agent) journalDir() string { return filepath.Join(a.cfg.StateDir, "sessions") }

func (a *Agent) saveJournal(e *journalEntry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode journal of %s: %w", e.Assignment.ID, err)
	}
	return atomicfile.Write(filepath.Join(a.journalDir(), e.Assignment.ID+".json"), b, 0o600)
}

func (a *Agent) removeJournal(id string) error {
	err := os.Remove(filepath.Join(a.journalDir(), id+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (a *Agent) loadJournals() ([]*journalEntry, error) {
	ents, err := os.ReadDir(a.journalDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read session journal: %w", err)
	}
	var out []*journalEntry
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".json") {
			continue
		}
		p := filepath.Join(a.journalDir(), ent.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read journal %s: %w", p, err)
		}
		var e journalEntry
		if err := json.Unmarshal(b, &e); err != nil {
			a.log.Error("skipping corrupt session journal", "path", p, "err", err)
			continue
		}
		out = append(out, &e)
	}
	return out, nil
}
