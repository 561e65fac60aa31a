package console

import (
	"net/http"
	"strings"

	"github.com/tripcap/tripcap"
)

// The storage accounts page: where capture files go (a file system, S3,
// Azure Blob). Adding one opens it first (controlplane.AddStorageAccount),
// so a wrong URL or credential fails here, not at the first capture.

func (c *Console) storagePage() {
	c.nav(navStorage, "Storage", "/storage", tripcap.PermRead)
	c.get("/storage", c.storageList)
	c.post("/storage", c.storageAdd)
	c.post("/storage/{account}/delete", c.storageDelete)
}

type storageData struct {
	Accounts  []*tripcap.StorageAccount
	Name, URL string
	Error     *formError
	Notice    string
}

func (c *Console) storageList(w http.ResponseWriter, r *http.Request) error {
	return c.renderStorage(w, r, http.StatusOK, storageData{Notice: notice(r)})
}

func (c *Console) renderStorage(w http.ResponseWriter, r *http.Request, status int, d storageData) error {
	var err error
	if d.Accounts, err = c.cfg.Service.FindStorageAccounts(r.Context()); err != nil {
		return err
	}
	c.renderStatus(w, r, status, "storage", d)
	return nil
}

func (c *Console) storageAdd(w http.ResponseWriter, r *http.Request) error {
	v := postForm(r)
	d := storageData{Name: strings.TrimSpace(v.Get("name")), URL: strings.TrimSpace(v.Get("url"))}
	_, err := c.cfg.Service.AddStorageAccount(r.Context(), d.Name, d.URL)
	if code := tripcap.ErrorCode(err); code == tripcap.EINVALID || code == tripcap.ECONFLICT {
		d.Error = newFormError(err)
		// The URL may hold a credential: it is not shown back.
		d.URL = ""
		return c.renderStorage(w, r, http.StatusBadRequest, d)
	}
	if err != nil {
		return err
	}
	done(w, r, "/storage", "storage-added")
	return nil
}

func (c *Console) storageDelete(w http.ResponseWriter, r *http.Request) error {
	if err := c.cfg.Service.DeleteStorageAccount(r.Context(), r.PathValue("account")); err != nil {
		return err
	}
	done(w, r, "/storage", "storage-forgotten")
	return nil
}
