package source

import (
	"fmt"
	"os"
	"sync"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Position is how far one input of a source is finished: every line before
// Offset has been written by every sink it reached, filtered out or
// dead-lettered. Reading again from Offset loses nothing.
//
// A file is known by its identity, which a rename keeps: its device and
// inode numbers and the fingerprint of its first bytes (see fingerprint).
// File is its absolute path when it was opened, for people and for finding
// it again where its identity does not (a checkpoint saved before the
// identity was kept has File and Offset only, File as the run resolved it).
type Position struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Device uint64 `json:"dev,omitempty"`
	Inode  uint64 `json:"inode,omitempty"`
	// Fingerprint is the fingerprint of the file's first min(1 KiB, Offset)
	// bytes.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// String renders the position as file@offset, for text logs.
func (p Position) String() string { return fmt.Sprintf("%s@%d", p.File, p.Offset) }

// id is the file's device and inode numbers; zero when not known.
func (p Position) id() fileID { return fileID{dev: p.Device, ino: p.Inode} }

// positions holds the checkpoint of every input a source has opened or is
// to open.
type positions struct {
	mu     sync.Mutex
	inputs []*input
	// saved is the checkpoint a resumed file source starts from, which
	// Checkpoint returns until Run has matched it to the files
	// (restored), so that a snapshot taken before never forgets it.
	saved    []Position
	restored bool
}

// An input is one file (or standard input) a source reads or read.
type input struct {
	// file is the path the input is read under, as records and messages
	// name it; abs is its absolute path, for the checkpoint.
	file, abs string
	// id is the file's identity; zero for standard input.
	id   fileID
	done *flowruntime.Checkpoint
	// head holds the file's first bytes, up to fingerprintSize, for its
	// fingerprint; while the file is open, fh reads more of them.
	head []byte
	fh   *os.File
	// fp caches the fingerprint of head's first fpLen bytes.
	fp    string
	fpLen int
	// end is how far the file was read once it is no longer read (rotated
	// away, or a rotated file read to its end at start); -1 until then.
	end int64
	// drop forgets the input once every line of it is finished: a rotated
	// file no path of the glob matches.
	drop bool
}

// track starts tracking an input without identity (standard input) opened
// at offset. An input opened again under the same name replaces the
// earlier one.
func (p *positions) track(file string, offset int64) *flowruntime.Checkpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := flowruntime.NewCheckpoint(offset)
	for _, in := range p.inputs {
		if in.file == file && !in.id.known() {
			in.done = cp
			return cp
		}
	}
	p.inputs = append(p.inputs, &input{file: file, done: cp, end: -1})
	return cp
}

// A fileRef is a file found on disk: the path it is read under, its
// absolute path, its identity, its open handle (nil when not open yet) and
// the first bytes read of it (nil when none were).
type fileRef struct {
	path, abs string
	id        fileID
	fh        *os.File
	head      []byte
}

// trackFile starts tracking the file ref, read from offset. A file of the
// same identity tracked before (truncated and read again, or matched at
// start and now opened) is replaced.
func (p *positions) trackFile(ref fileRef, offset int64) *input {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.find(ref)
	if in == nil {
		in = &input{}
		p.inputs = append(p.inputs, in)
	}
	*in = input{file: ref.path, abs: ref.abs, id: ref.id, done: flowruntime.NewCheckpoint(offset),
		head: ref.head, fh: ref.fh, end: -1}
	if ref.fh != nil {
		in.readHead()
	}
	return in
}

// find returns the input tracked for ref's file, or nil.
func (p *positions) find(ref fileRef) *input {
	for _, in := range p.inputs {
		if ref.id.known() && in.id == ref.id || !ref.id.known() && !in.id.known() && in.file == ref.path {
			return in
		}
	}
	return nil
}

// reopen returns the input of the file ref, now open under ref.path, when
// it was tracked before and is no longer read (rotated away, then matched
// by the glob under its new name), with the offset it was read to: the file
// goes on from there, its lines tracked by the same checkpoint. It returns
// nil when the file is new, or has other first bytes than those read.
func (p *positions) reopen(ref fileRef) (*input, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.find(ref)
	if in == nil || in.end < 0 || !ref.id.known() {
		return nil, 0
	}
	head, err := readHead(ref.fh)
	if err != nil || len(head) < len(in.head) || string(head[:len(in.head)]) != string(in.head) {
		return nil, 0
	}
	in.file, in.abs, in.fh, in.head = ref.path, ref.abs, ref.fh, head
	off := in.end
	in.end, in.drop = -1, false
	return in, off
}

// readHead reads more of the file's first bytes while it is open.
func (in *input) readHead() {
	if in.fh == nil || len(in.head) >= fingerprintSize {
		return
	}
	if head, err := readHead(in.fh); err == nil && len(head) > len(in.head) {
		in.head = head
	}
}

// close reads what it still needs of in's first bytes and closes its file:
// it is no longer read. A rotated file records how far it was read (end >=
// 0); end < 0 leaves that as it is.
func (p *positions) close(in *input, end int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in.fh == nil {
		return
	}
	in.readHead()
	in.fh.Close()
	in.fh = nil
	if end >= 0 {
		in.end = end
	}
}

// dropRotated marks every input no longer read to be forgotten once it is
// finished: called once the glob is matched again, after which a rotated
// file still matched by it is read again (reopen).
func (p *positions) dropRotated() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.inputs {
		if in.end >= 0 && in.fh == nil {
			in.drop = true
		}
	}
}

// resumeFrom makes Checkpoint return saved until restore is called.
func (p *positions) resumeFrom(saved []Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.saved, p.restored = saved, false
}

// restore tracks the files a resumed run matched its checkpoint to, each
// from its offset, before any is opened: a snapshot taken while the first
// is read keeps the positions of the others.
func (p *positions) restore(refs []fileRef, offsets []int64) []*input {
	ins := make([]*input, len(refs))
	for i, ref := range refs {
		ins[i] = p.trackFile(ref, offsets[i])
	}
	p.mu.Lock()
	p.restored = true
	p.mu.Unlock()
	return ins
}

// Checkpoint returns the finished position of every input, in the order they
// were first tracked ([]Position). A finished input marked to be dropped is
// forgotten.
func (p *positions) Checkpoint() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.saved != nil && !p.restored {
		return append([]Position(nil), p.saved...)
	}
	out := make([]Position, 0, len(p.inputs))
	kept := p.inputs[:0]
	for _, in := range p.inputs {
		off := in.done.Committed()
		if in.drop && off >= in.end {
			continue
		}
		kept = append(kept, in)
		pos := Position{File: in.abs, Offset: off, Device: in.id.dev, Inode: in.id.ino}
		if pos.File == "" {
			pos.File = in.file
		}
		if in.id.known() {
			pos.Fingerprint = in.fingerprint(off)
		}
		out = append(out, pos)
	}
	clear(p.inputs[len(kept):])
	p.inputs = kept
	return out
}

// fingerprint returns the fingerprint of the input's first min(1 KiB, off)
// bytes.
func (in *input) fingerprint(off int64) string {
	n := int(min(off, fingerprintSize))
	if len(in.head) < n {
		in.readHead()
	}
	n = min(n, len(in.head))
	if in.fp == "" || in.fpLen != n {
		in.fp, in.fpLen = fingerprint(in.head[:n]), n
	}
	return in.fp
}
