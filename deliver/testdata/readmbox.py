"""Reads an mbox with Python's mailbox module, an independent reader, and
prints each message as JSON: its From_ line and its bytes (still quoted:
mailbox.mbox does not undo mboxrd quoting), both base64-encoded."""
import base64
import json
import mailbox
import sys

box = mailbox.mbox(sys.argv[1], create=False)
out = []
for key in sorted(box.keys()):
    raw = box.get_bytes(key, from_=True)
    from_line, _, msg = raw.partition(b"\n")
    out.append({
        "from": base64.b64encode(from_line).decode(),
        "msg": base64.b64encode(msg).decode(),
    })
json.dump(out, sys.stdout)
