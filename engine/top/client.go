package top

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"

	"github.com/flowrun/flowrun/engine/admin"
)

// PipelinesPath is the admin server's endpoint the dashboard polls.
const PipelinesPath = "/api/v1/pipelines"

// Client reads an admin server's /api/v1/pipelines.
type Client struct {
	// Base is the server's URL without a path, as http://127.0.0.1:9180.
	Base string
	// HTTP makes the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Pipelines returns what the server answers to GET /api/v1/pipelines. A
// server that cannot be reached, an answer that is not 200 and a body that
// is not the JSON of admin.Pipeline values are errors.
func (c Client) Pipelines(ctx context.Context) ([]admin.Pipeline, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	url := strings.TrimSuffix(c.Base, "/") + PipelinesPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A *url.Error repeats the method and the URL: keep its reason.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	var ps []admin.Pipeline
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
		return nil, fmt.Errorf("GET %s: decoding the answer: %w", url, err)
	}
	return ps, nil
}
