package engine

import (
	"log/slog"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/internal/vfs"
)

// targetKind is what the engine needs to know of a kind of delivery
// target, chosen once from the account's [account.deliver].
type targetKind struct {
	name string
	// open opens the account's target of this kind; trace, if not nil,
	// receives the protocol trace of a target that speaks to a server.
	open func(d config.Deliver, trace *slog.Logger, fsys vfs.FS) (deliver.Target, error)
	// limits bound a batch: how much is delivered before it is made
	// durable, recorded and deleted.
	limits batchLimits
	// needsSender: the target wants the envelope sender (Return-Path),
	// which costs a look at the message's header.
	needsSender bool
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
		open: func(d config.Deliver, _ *slog.Logger, fsys vfs.FS) (deliver.Target, error) {
			return deliver.OpenMaildir(d.Maildir, deliver.MaildirOptions{FS: fsys})
		},
		// Uncommitted messages wait in tmp/, invisible: a crash leaves
		// no duplicate, so batches can be large.
		limits: batchLimits{messages: 128, bytes: 32 << 20, age: 500 * time.Millisecond},
	}
	mboxKind = targetKind{
		name: "mbox",
		open: func(d config.Deliver, _ *slog.Logger, fsys vfs.FS) (deliver.Target, error) {
			return deliver.OpenMbox(d.Mbox, deliver.MboxOptions{FS: fsys})
		},
		// Appended messages are visible at once, and a crash before the
		// record leaves them to be fetched again: keep the window short.
		// Each batch costs an fsync and a lock round (dotlock + fcntl).
		limits:      batchLimits{messages: 8, bytes: 4 << 20, age: 20 * time.Millisecond},
		needsSender: true,
	}
	mdaKind = targetKind{
		name: "mda",
		open: func(d config.Deliver, _ *slog.Logger, _ vfs.FS) (deliver.Target, error) {
			return deliver.NewMDA(d.MDA, deliver.MDAOptions{})
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
		open: func(d config.Deliver, trace *slog.Logger, _ vfs.FS) (deliver.Target, error) {
			return deliver.OpenLMTP(d.LMTP, deliver.SMTPOptions{Recipient: d.Recipient, Logger: trace})
		},
		limits:      batchLimits{messages: 8, bytes: 4 << 20, age: 50 * time.Millisecond},
		needsSender: true,
	}
	smtpKind = targetKind{
		name: "smtp",
		open: func(d config.Deliver, trace *slog.Logger, _ vfs.FS) (deliver.Target, error) {
			return deliver.OpenSMTP(d.SMTP, deliver.SMTPOptions{Recipient: d.Recipient, Logger: trace})
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
