package top

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/flowrun/flowrun/engine/admin"
)

// DefaultInterval is how often the dashboard polls when Config.Interval is
// zero.
const DefaultInterval = time.Second

// Config is what a Model shows and how.
type Config struct {
	// Client reads the admin server; Addr is how the header names it.
	Client Client
	Addr   string
	// Interval is the time between the end of one poll and the start of
	// the next (DefaultInterval when zero); a poll that takes longer than
	// max(Interval, 2s) fails.
	Interval time.Duration
	// Renderer styles the view, for the terminal it is shown on; nil means
	// lipgloss's default renderer (standard output).
	Renderer *lipgloss.Renderer
}

// Model is the bubbletea model of the dashboard. It polls the server
// once at start and then every interval, keeps the last answer, and when a
// poll fails shows the error on a line of its own and keeps polling, the
// last answer (if any) still shown below it. q and ctrl+c quit.
type Model struct {
	cfg    Config
	styles styles
	width  int

	pipelines []admin.Pipeline
	polled    bool  // an answer has come
	err       error // the last poll's error, nil when it succeeded
	failures  int   // polls failed in a row
	quitting  bool
}

// New returns the Model of cfg.
func New(cfg Config) Model {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Addr == "" {
		cfg.Addr = cfg.Client.Base
	}
	r := cfg.Renderer
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	return Model{cfg: cfg, styles: newStyles(r)}
}

// polledMsg is the result of one poll.
type polledMsg struct {
	pipelines []admin.Pipeline
	err       error
}

// pollMsg asks for the next poll.
type pollMsg struct{}

// Init starts the first poll.
func (m Model) Init() tea.Cmd { return m.poll }

// poll reads the server once.
func (m Model) poll() tea.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), max(m.cfg.Interval, 2*time.Second))
	defer cancel()
	ps, err := m.cfg.Client.Pipelines(ctx)
	return polledMsg{pipelines: ps, err: err}
}

// Update takes a key, a resize or a poll's result.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			m.quitting = true
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case polledMsg:
		if msg.err != nil {
			m.err = msg.err
			m.failures++
		} else {
			m.pipelines, m.polled, m.err, m.failures = msg.pipelines, true, nil, 0
		}
		return m, tea.Tick(m.cfg.Interval, func(time.Time) tea.Msg { return pollMsg{} })
	case pollMsg:
		return m, m.poll
	}
	return m, nil
}

// Pipelines returns the last answer of the server.
func (m Model) Pipelines() []admin.Pipeline { return m.pipelines }

// Err returns the last poll's error, nil when it succeeded.
func (m Model) Err() error { return m.err }

// Quitting reports whether the user asked to quit.
func (m Model) Quitting() bool { return m.quitting }

// View renders the dashboard.
func (m Model) View() string {
	if m.quitting {
		return ""
	}
	return m.render()
}
