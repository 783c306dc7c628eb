package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDirEnv names an environment variable that, when set, is the directory
// holding initdb and postgres, instead of the newest /usr/lib/postgresql/*/bin.
const BinDirEnv = "FLOWRUN_PG_BIN"

// Options tunes a server.
type Options struct {
	// Settings are extra postgresql.conf settings, e.g. "log_statement":
	// "all" (the log is read with Server.Log).
	Settings map[string]string
}

// Server is a running private PostgreSQL server.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	data    string
	logPath string
	port    int
	cred    *syscall.Credential

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the running postgres process has exited.
	exited chan struct{}
	logF   *os.File
}

// BinDir returns the directory holding initdb and postgres, or an error
// saying none was found.
func BinDir() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinDirEnv, d, err)
		}
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL binaries: install the postgresql package (initdb under /usr/lib/postgresql/*/bin) or set " + BinDirEnv)
}

// version reads the major version out of /usr/lib/postgresql/N/bin/initdb.
func version(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// Start starts a server with the default settings; see StartWith.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith initialises a cluster in a temporary directory and starts a
// server on it. The superuser is "postgres" and the database "postgres"; the
// server stops and the directory is removed when t ends.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: %v (CI is set, so this is a failure, not a skip)", err)
		}
		t.Skipf("pgtest: %v; skipping (set CI to make this a failure)", err)
	}
	s := &Server{t: t, bin: bin}
	if os.Geteuid() == 0 {
		if s.cred, err = unprivileged(); err != nil {
			t.Fatalf("pgtest: running as root and %v", err)
		}
	}
	// Not t.TempDir: its parents are private to root, and the server may
	// run as another user.
	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(s.dir) })
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	s.data = filepath.Join(s.dir, "data")
	s.logPath = filepath.Join(s.dir, "postgres.log")
	if s.port, err = freePort(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	if err := s.initdb(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	settings := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"port":                    strconv.Itoa(s.port),
		"unix_socket_directories": "''",
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"full_page_writes":        "off",
		"max_connections":         "50",
		"shared_buffers":          "32MB",
	}
	for k, v := range opts.Settings {
		settings[k] = quoteSetting(v)
	}
	var conf strings.Builder
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&conf, "%s = %s\n", k, settings[k])
	}
	f, err := os.OpenFile(filepath.Join(s.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("\n# pgtest\n" + conf.String())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("pgtest: write postgresql.conf: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("pgtest: stop: %v", err)
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s
}

// quoteSetting quotes a setting's value unless it is a number or already
// quoted.
func quoteSetting(v string) string {
	if strings.HasPrefix(v, "'") {
		return v
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// unprivileged returns the credentials of the postgres system user, or of
// nobody.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("there is neither a postgres nor a nobody user to run PostgreSQL as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the connection string of the database "postgres" as superuser.
func (s *Server) DSN() string { return s.DSNFor("postgres") }

// DSNFor is the connection string of database db as superuser.
func (s *Server) DSNFor(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.port }

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		s.t.Errorf("pgtest: read the server log: %v", err)
	}
	return string(b)
}

// Restart stops the server (fast shutdown: open connections are closed)
// and starts it again on the same port and data directory. It fails the
// test that started the server: call it from that test's goroutine.
func (s *Server) Restart() { s.t.Helper(); s.Outage(0) }

// Outage stops the server as Restart does, keeps it down for d, and starts
// it again.
func (s *Server) Outage(d time.Duration) {
	s.t.Helper()
	if err := s.stop(); err != nil {
		s.t.Fatalf("pgtest: stop: %v", err)
	}
	time.Sleep(d)
	if err := s.start(); err != nil {
		s.t.Fatalf("pgtest: restart: %v", err)
	}
}

// Conn opens a connection to database "postgres", closed when the test
// ends.
func (s *Server) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Exec runs SQL statements on a fresh connection, failing the test on error.
func (s *Server) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", firstLine(sql), err)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// start runs postgres in the foreground of a child process and waits until
// it accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	logF, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open the server log: %w", err)
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logF, logF
	// Pdeathsig: the server dies with the test process even when the test
	// binary is killed and its cleanups never run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logF.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.logF = cmd, exited, logF

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.DSN())
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			logF.Close()
			return fmt.Errorf("postgres exited at start:\n%s", tail(s.logPath))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within a minute: %v\n%s", err, tail(s.logPath))
		}
	}
}

// stop shuts the server down fast (SIGINT) and waits for it to exit,
// killing it after 30 seconds.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	defer func() {
		s.cmd = nil
		s.logF.Close()
	}()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		select {
		case <-s.exited:
			return nil
		default:
			return fmt.Errorf("signal postgres: %w", err)
		}
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("postgres did not stop within 30s; killed it:\n%s", tail(s.logPath))
	}
}

// tail returns the last lines of a file.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// templates caches, per binary directory, a pristine cluster made by initdb
// (which takes seconds) that each server copies (which takes a fraction).
var templates sync.Map // bin dir -> *template

type template struct {
	once sync.Once
	dir  string
	err  error
}

// initdb makes the server's data directory: a copy of the cached template
// cluster, or a fresh initdb when there is no cache.
func (s *Server) initdb() error {
	v, _ := templates.LoadOrStore(s.bin, &template{})
	tpl := v.(*template)
	tpl.once.Do(func() { tpl.dir, tpl.err = s.template() })
	if tpl.err != nil {
		s.t.Logf("pgtest: no template cluster (%v); running initdb", tpl.err)
	} else {
		out, err := exec.Command("cp", "-a", tpl.dir, s.data).CombinedOutput()
		if err == nil {
			return nil
		}
		os.RemoveAll(s.data)
		s.t.Logf("pgtest: copying the template cluster failed (%v: %s); running initdb", err, out)
	}
	return s.runInitdb(s.data)
}

// template returns the cached template cluster of s.bin, making it if
// needed. It is made under a
// temporary name and renamed into place, so concurrent test processes
// never see half of one.
func (s *Server) template() (string, error) {
	uid := os.Geteuid()
	if s.cred != nil {
		uid = int(s.cred.Uid)
	}
	// Under the temporary directory, not the user's cache directory: the
	// server's user must be able to reach it.
	base := filepath.Join(os.TempDir(), "flowrun-pgtest-cache")
	dir := filepath.Join(base, fmt.Sprintf("%s-uid%d", strings.ReplaceAll(strings.Trim(s.bin, "/"), "/", "_"), uid))
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(base, "making-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if s.cred != nil {
		if err := os.Chown(tmp, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return "", err
		}
	}
	if err := s.runInitdb(filepath.Join(tmp, "data")); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "data"), dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "PG_VERSION")); serr == nil {
			return dir, nil // another process made it first
		}
		return "", err
	}
	return dir, nil
}

// runInitdb initialises a cluster in data, as the server's user.
func (s *Server) runInitdb(data string) error {
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Dir = filepath.Dir(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}
