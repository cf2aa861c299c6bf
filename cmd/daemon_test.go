package cmd

import (
	"testing"
	"time"
)

// TestBackoff: the daemon's wait after a round doubles with each failure
// in a row, stops at an hour, and is never shorter than the server's
// LOGIN-DELAY.
func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		interval   time.Duration
		failures   int
		loginDelay time.Duration
		want       time.Duration
	}{
		{5 * time.Minute, 0, 0, 5 * time.Minute},
		{5 * time.Minute, 1, 0, 5 * time.Minute},
		{5 * time.Minute, 2, 0, 10 * time.Minute},
		{5 * time.Minute, 3, 0, 20 * time.Minute},
		{5 * time.Minute, 5, 0, time.Hour},
		{5 * time.Minute, 50, 0, time.Hour},
		{2 * time.Hour, 3, 0, 2 * time.Hour}, // an interval above the cap stays
		{time.Minute, 0, 15 * time.Minute, 15 * time.Minute},
		{time.Minute, 2, 15 * time.Minute, 15 * time.Minute},
	} {
		if got := backoff(c.interval, c.failures, c.loginDelay); got != c.want {
			t.Errorf("backoff(%v, %d, %v) = %v, want %v", c.interval, c.failures, c.loginDelay, got, c.want)
		}
	}
}
