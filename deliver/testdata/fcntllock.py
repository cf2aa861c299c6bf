"""Holds a POSIX fcntl write lock (lockf, as procmail's F_SETLKW) on the
whole of a file: prints "locked" once it has it, and keeps it until its
stdin is closed. With --try, it only reports (exit 0 or 1) whether the lock
is free, without waiting."""
import fcntl
import sys

with open(sys.argv[-1], "a") as f:
    if sys.argv[1] == "--try":
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            sys.exit(1)
        sys.exit(0)
    fcntl.lockf(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
