package engine

import (
	"strconv"
	"strings"
	"time"

	"github.com/popfetch/popfetch/pop3"
)

// checkCaps takes what matters from the capabilities after login: the
// LOGIN-DELAY a daemon must honour, and an EXPIRE policy that contradicts
// keep (RFC 2449 §6.5, §6.7).
func (r *run) checkCaps(caps pop3.Caps) {
	if d, ok := capNumber(caps, "LOGIN-DELAY"); ok {
		r.res.LoginDelay = time.Duration(d) * time.Second
	}
	a := r.acct
	if !a.Keep {
		return
	}
	days, ok := capNumber(caps, "EXPIRE")
	switch {
	case !ok:
	case days == 0:
		r.log.Warn("the server deletes messages once they are retrieved (EXPIRE 0): keep = true cannot leave them there")
	case a.DeleteAfter == 0 || time.Duration(days)*24*time.Hour < a.DeleteAfter:
		r.log.Warn("the server deletes retrieved messages after " + strconv.Itoa(days) +
			" days (EXPIRE), sooner than keep/delete_after ask")
	}
}

// capNumber returns the numeric argument of a capability such as
// "EXPIRE 31" or "LOGIN-DELAY 900"; not for "NEVER" or the pre-login
// "USER" placeholder.
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
