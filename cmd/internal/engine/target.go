package engine

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/uidcache"
)

// targetKind is what the engine needs to know of a kind of delivery
// target, chosen once from the account's [account.deliver].
type targetKind struct {
	name string
	// open opens the account's target of this kind.
	open func(e targetEnv) (deliver.Target, error)
	// limits bound a batch: how much is delivered before it is made
	// durable, recorded and deleted.
	limits batchLimits
	// needsSender: the target wants the envelope sender (Return-Path),
	// which costs a look at the message's header.
	needsSender bool
}

// targetEnv is what opening a target takes.
type targetEnv struct {
	acct *config.Account
	// trace, if not nil, receives the protocol trace of a target that
	// speaks to a server.
	trace *slog.Logger
	fs    vfs.FS // of the state directory and of Maildir and mbox targets
}

// mboxOptions are the options of the account's mbox: with a journal in
// the state directory, so a crash never leaves a cut-off message in it
// (see deliver.RecoverMbox).
func (e targetEnv) mboxOptions() deliver.MboxOptions {
	a := e.acct
	return deliver.MboxOptions{FS: e.fs, Journal: filepath.Join(a.StateDir, uidcache.EscapeKey(a.Key())+".mbox")}
}

// batchLimits bound how much is delivered before it is made durable,
// recorded and deleted: larger batches share an fsync among more messages;
// smaller ones leave fewer duplicates after a crash (what was delivered but
// not recorded is fetched again).
type batchLimits struct {
	messages int
	bytes    int64
	age      time.Duration
}

var (
	maildirKind = targetKind{
		name: "maildir",
		open: func(e targetEnv) (deliver.Target, error) {
			// One syncfs(2) for a batch costs less than a fsync per
			// file: the rig's scenario a takes 0.25-0.26 s instead of
			// 0.33 s (BENCHMARKS.md).
			return deliver.OpenMaildir(e.acct.Deliver.Maildir, deliver.MaildirOptions{FS: e.fs, SyncFS: true})
		},
		// Uncommitted messages wait in tmp/, invisible: a crash leaves
		// no duplicate, so batches can be large.
		limits: batchLimits{messages: 128, bytes: 32 << 20, age: 500 * time.Millisecond},
	}
	mboxKind = targetKind{
		name: "mbox",
		open: func(e targetEnv) (deliver.Target, error) {
			return deliver.OpenMbox(e.acct.Deliver.Mbox, e.mboxOptions())
		},
		// A batch waits in the spool, invisible, and its append is
		// journaled: a crash leaves no cut-off message and no duplicate
		// (deliver.RecoverMbox), so batches can be large, as a Maildir's.
		// Each costs four fsyncs and one lock round (dotlock + fcntl),
		// for the time of the append only.
		limits:      batchLimits{messages: 128, bytes: 32 << 20, age: 500 * time.Millisecond},
		needsSender: true,
	}
	mdaKind = targetKind{
		name: "mda",
		open: func(e targetEnv) (deliver.Target, error) {
			return deliver.NewMDA(e.acct.Deliver.MDA, deliver.MDAOptions{})
		},
		// An MDA delivers for good when it exits: record each at once
		// (the save runs beside the next message's delivery).
		limits:      batchLimits{messages: 1},
		needsSender: true,
	}
	// LMTP and SMTP servers take each message for good at their 250,
	// like an MDA at its exit, and it is visible at once, like an mbox's.
	// Recording each at once would make the run wait for a cache save
	// (write, fsync, rename, fsync) per message, several times what a
	// delivery to a fast server costs (300 messages to an LMTP server
	// that does nothing: 1.6 s instead of 0.3 s); so a short window like
	// the mbox's, at the cost of at most a batch or two delivered again
	// after a crash.
	lmtpKind = targetKind{
		name: "lmtp",
		open: func(e targetEnv) (deliver.Target, error) {
			return deliver.OpenLMTP(e.acct.Deliver.LMTP, deliver.SMTPOptions{Recipient: e.acct.Deliver.Recipient, Logger: e.trace})
		},
		limits:      batchLimits{messages: 8, bytes: 4 << 20, age: 50 * time.Millisecond},
		needsSender: true,
	}
	smtpKind = targetKind{
		name: "smtp",
		open: func(e targetEnv) (deliver.Target, error) {
			return deliver.OpenSMTP(e.acct.Deliver.SMTP, deliver.SMTPOptions{Recipient: e.acct.Deliver.Recipient, Logger: e.trace})
		},
		limits:      batchLimits{messages: 8, bytes: 4 << 20, age: 50 * time.Millisecond},
		needsSender: true,
	}
)

// kindOf returns the kind of the account's delivery target, nil if none
// is configured.
func kindOf(d config.Deliver) *targetKind {
	switch {
	case d.Maildir != "":
		return &maildirKind
	case d.Mbox != "":
		return &mboxKind
	case d.MDA != "":
		return &mdaKind
	case d.LMTP != "":
		return &lmtpKind
	case d.SMTP != "":
		return &smtpKind
	}
	return nil
}
