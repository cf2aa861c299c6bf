package engine

import (
	"strconv"
	"strings"
	"time"

	"github.com/popfetch/popfetch/pop3"
)

// checkCaps takes what matters from the capabilities after login: the
// LOGIN-DELAY a daemon must honour, and an EXPIRE policy that contradicts
// keep (RFC 2449 §6.5, §6.7). In delete mode a server that removes what
// was retrieved (EXPIRE 0) does what popfetch asks anyway; the session
// end rule (see ledger) makes it safe.
func (r *run) checkCaps(caps pop3.Caps) {
	if d, ok := capNumber(caps, "LOGIN-DELAY"); ok {
		r.res.LoginDelay = time.Duration(d) * time.Second
	}
	a := r.acct
	if !a.Keep {
		return
	}
	days, ok := expireDays(caps)
	switch {
	case !ok:
	case days == 0:
		r.log.Warn("the server deletes messages once they are retrieved (EXPIRE 0): keep = true cannot leave them there")
	case a.DeleteAfter == 0 || time.Duration(days)*24*time.Hour < a.DeleteAfter:
		r.log.Warn("the server deletes retrieved messages after " + strconv.Itoa(days) +
			" days (EXPIRE), sooner than keep/delete_after ask")
	}
}

// expireDays returns the server's EXPIRE policy in days (RFC 2449 §6.7):
// "EXPIRE 0" and the one-word spelling "EXPIRE0" that some servers use
// mean retrieved messages are removed at the end of the session; "EXPIRE
// NEVER" (and no EXPIRE) report ok false. The pre-login "USER" suffix
// (EXPIRE 30 USER: it depends on the user) is ignored.
func expireDays(caps pop3.Caps) (int, bool) {
	if caps.Has("EXPIRE0") {
		return 0, true
	}
	return capNumber(caps, "EXPIRE")
}

// capNumber returns the numeric argument of a capability such as
// "EXPIRE 31" or "LOGIN-DELAY 900"; not for "NEVER".
func capNumber(caps pop3.Caps, name string) (int, bool) {
	args := caps.Args(name)
	if len(args) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(args[0]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
