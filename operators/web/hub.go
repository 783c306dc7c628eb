package web

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

// broadcastOptions are the options of the sinks that serve every record to
// every connected client.
func broadcastOptions() []planner.OptionSpec {
	return []planner.OptionSpec{
		{Name: "client_queue", Type: planner.Int, Default: int64(1024),
			Doc: "The most messages queued for one client; a client whose queue is full is slow."},
		{Name: "slow_client", Type: planner.Enum, Enum: []string{"drop_oldest", "disconnect"}, Default: "drop_oldest",
			Doc: "What happens to a slow client: drop_oldest drops its oldest queued message for the new one, disconnect closes it (it may reconnect). Both are counted and logged; the pipeline never waits for a client."},
	}
}

func checkBroadcast(p *operators.Problems, o planner.Options) {
	p.Min(o, "client_queue", 1)
}

// hub holds the connected clients of a broadcast sink and their queues.
// Publishing never blocks: a full queue applies the slow-client policy.
type hub struct {
	log        hclog.Logger
	queueLen   int
	disconnect bool

	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool

	dropped, disconnected, sent atomic.Int64
}

func newHub(o planner.Options, log hclog.Logger) *hub {
	return &hub{
		log:        log,
		queueLen:   int(o.Int("client_queue")),
		disconnect: o.String("slow_client") == "disconnect",
		clients:    map[*client]struct{}{},
	}
}

// client is one connected client's queue: a ring of encoded messages.
type client struct {
	addr string
	// wake has one slot: a message was queued or the client must end.
	wake chan struct{}

	mu   sync.Mutex
	ring [][]byte
	head int
	n    int
	// kicked means the client fell behind and must be disconnected;
	// closing means the sink is closing: send what is queued, then end.
	kicked, closing bool
	dropped         int64
}

// add registers a client; with under the hub's lock, so that nothing
// published can fall between what under hands over and the queue.
func (h *hub) add(addr string, under func()) (*client, bool) {
	c := &client{addr: addr, wake: make(chan struct{}, 1), ring: make([][]byte, h.queueLen)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	if under != nil {
		under()
	}
	h.clients[c] = struct{}{}
	h.log.Debug("client connected", "client", addr, "clients", len(h.clients))
	return c, true
}

// remove unregisters a client.
func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	n := len(h.clients)
	h.mu.Unlock()
	c.mu.Lock()
	dropped := c.dropped
	c.mu.Unlock()
	if dropped > 0 {
		h.log.Warn("slow client disconnected after messages were dropped for it", "client", c.addr,
			"clients", n, "dropped", dropped, "dropped_total", h.dropped.Load())
		return
	}
	h.log.Debug("client disconnected", "client", c.addr, "clients", n)
}

// stalled counts and logs a client disconnected because writing to it
// took longer than the write timeout.
func (h *hub) stalled(c *client, err error) {
	n := h.disconnected.Add(1)
	h.log.Warn("stalled client disconnected: a write timed out", "client", c.addr,
		"error", err, "disconnected_total", n)
}

// publish queues msg for every client. It must be called with h.mu held
// when the caller keeps other state in step (the replay buffer).
func (h *hub) publishLocked(msg []byte) {
	for c := range h.clients {
		h.offer(c, msg)
	}
}

func (h *hub) offer(c *client, msg []byte) {
	c.mu.Lock()
	if c.kicked || c.closing {
		c.mu.Unlock()
		return
	}
	if c.n == len(c.ring) {
		if h.disconnect {
			c.kicked = true
			c.mu.Unlock()
			h.disconnected.Add(1)
			h.log.Warn("slow client disconnected: its queue is full", "client", c.addr,
				"client_queue", len(c.ring), "disconnected_total", h.disconnected.Load())
			c.signal()
			return
		}
		c.ring[c.head] = nil
		c.head = (c.head + 1) % len(c.ring)
		c.n--
		c.dropped++
		if c.dropped == 1 {
			c.mu.Unlock()
			h.log.Warn("slow client: dropping its oldest queued messages", "client", c.addr,
				"client_queue", len(c.ring))
			c.mu.Lock()
		}
		h.dropped.Add(1)
	}
	c.ring[(c.head+c.n)%len(c.ring)] = msg
	c.n++
	c.mu.Unlock()
	c.signal()
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take moves the queued messages to dst. end reports that the client must
// stop after writing them (kicked: at once, without writing).
func (c *client) take(dst [][]byte) (msgs [][]byte, kicked, closing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 {
		dst = append(dst, c.ring[c.head])
		c.ring[c.head] = nil
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	return dst, c.kicked, c.closing
}

// close tells every client to send what is queued and end, and refuses
// new clients.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	cs := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.signal()
	}
}

// count returns the number of connected clients.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// BroadcastStats counts what a broadcast sink did for its clients.
type BroadcastStats struct {
	// Clients is the number of clients connected now.
	Clients int
	// Sent counts messages written to clients.
	Sent int64
	// Dropped counts messages dropped from slow clients' queues
	// (slow_client = "drop_oldest").
	Dropped int64
	// Disconnected counts slow clients disconnected: by slow_client =
	// "disconnect" when their queue is full, and under either policy
	// when writing to them takes longer than the write timeout.
	Disconnected int64
}

func (h *hub) stats() BroadcastStats {
	return BroadcastStats{Clients: h.count(), Sent: h.sent.Load(),
		Dropped: h.dropped.Load(), Disconnected: h.disconnected.Load()}
}
