package mailgen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"sort"
	"strings"
	"time"
)

// Realistic returns n plausible messages for a demo mailbox, dated over the
// days before now, oldest first: newsletters, a meeting invitation, a
// receipt, mailing-list posts, notes with an attachment, a subject and
// sender name in RFC 2047 encoded words, and more. Only the dates depend on
// the current time; see RealisticAt.
func Realistic(n int, seed uint64) [][]byte {
	return RealisticAt(n, seed, time.Now())
}

// RealisticAt is Realistic with the current time given: the same (n, seed,
// now) always give the same bytes. Message i starts with
// "X-Mailgen-Id: realistic-<seed>-<i>".
func RealisticAt(n int, seed uint64, now time.Time) [][]byte {
	if n <= 0 {
		return [][]byte{}
	}
	// Spread the messages over the last few days (more messages, more days),
	// the newest a few minutes old; sorted so message 0 is the oldest.
	r := newRand(seed, "realistic-dates", 0)
	span := time.Duration(2+min(n/8, 12)) * 24 * time.Hour
	ages := make([]time.Duration, n)
	for i := range ages {
		ages[i] = 3*time.Minute + time.Duration(r.Int64N(int64(span)))
	}
	sort.Slice(ages, func(a, b int) bool { return ages[a] > ages[b] })
	out := make([][]byte, n)
	for i := range out {
		date := now.Add(-ages[i]).Truncate(time.Second)
		out[i] = realisticMessage(seed, i, date)
	}
	return out
}

type person struct{ name, addr string }

var (
	colleagues = []person{
		{"Alice Martin", "alice.martin@corp.example.com"},
		{"Bob Okafor", "bob@corp.example.com"},
		{"Carol Nguyen", "carol.nguyen@corp.example.com"},
		{"Dave Rossi", "d.rossi@example.net"},
		{"Jürgen Müller", "juergen.mueller@example.de"},
		{"Søren Kierkegård", "soren@example.dk"},
		{"Zoë Laurent-Dubois", "zoe@example.fr"},
		{"田中 太郎", "tanaka@example.jp"},
	}
	me = person{"Pat Doe", "pat@example.org"}
)

// realisticKinds: message i is of kind i for the first len(realisticKinds)
// messages (so every kind is in a demo of a dozen), then random.
var realisticKinds = []func(r *rand.Rand, h *header, date time.Time) []string{
	newsletter, meetingInvite, receipt, listPost, noteWithAttachment, encodedWordNote,
	notification, personalNote, shipping, listPost, newsletter, personalNote,
}

func realisticMessage(seed uint64, i int, date time.Time) []byte {
	r := newRand(seed, "realistic", i)
	var h header
	h.add(IDHeader, fmt.Sprintf("realistic-%d-%d", seed, i))
	kind := realisticKinds[i%len(realisticKinds)]
	if i >= len(realisticKinds) {
		kind = pick(r, realisticKinds)
	}
	body := kind(r, &h, date)
	return assemble(h, body, false)
}

// envelope adds the fields every message has, in the usual order.
func envelope(r *rand.Rand, h *header, date time.Time, from person, fromHeader, subject string) {
	domain := from.addr[strings.IndexByte(from.addr, '@')+1:]
	h.add("Return-Path", "<"+from.addr+">")
	*h = append(*h,
		fmt.Sprintf("Received: from mail.%s (mail.%s [198.51.100.%d])", domain, domain, r.IntN(254)+1),
		fmt.Sprintf("\tby mx.example.org (Postfix) with ESMTPS id %010X", r.Uint64()>>24),
		"\tfor <"+me.addr+">; "+rfc5322Date(date.Add(time.Duration(5+r.IntN(60))*time.Second).UTC()))
	h.add("Date", rfc5322Date(date.In(pick(r, zones))))
	h.add("From", fromHeader)
	h.add("To", me.name+" <"+me.addr+">")
	h.add("Subject", subject)
	h.add("Message-ID", messageID(r, domain))
}

// address formats a display name and address, with an RFC 2047 encoded
// word for a non-ASCII name.
func address(p person) string {
	for _, c := range p.name {
		if c >= 0x80 {
			return encodedWord(mime.QEncoding, p.name) + " <" + p.addr + ">"
		}
	}
	return p.name + " <" + p.addr + ">"
}

// encodedWord is an RFC 2047 encoded word in the customary upper case
// ("=?UTF-8?B?...?="; mime's encoder writes "?b?", which is equally valid).
func encodedWord(enc mime.WordEncoder, s string) string {
	w := enc.Encode("UTF-8", s)
	w = strings.ReplaceAll(w, "?b?", "?B?")
	return strings.ReplaceAll(w, "?q?", "?Q?")
}

func qp(text string) []string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(text))
	_ = w.Close()
	return strings.Split(strings.ReplaceAll(strings.TrimRight(b.String(), "\r\n"), "\r\n", "\n"), "\n")
}

func newsletter(r *rand.Rand, h *header, date time.Time) []string {
	lists := []struct{ name, addr, topic string }{
		{"Go Weekly", "newsletter@weekly.example.com", "Go"},
		{"The Morning Byte", "digest@byte.example.net", "tech"},
		{"Gardening Monthly", "hello@garden.example.org", "gardening"},
	}
	l := pick(r, lists)
	issue := 100 + r.IntN(400)
	envelope(r, h, date, person{l.name, l.addr}, l.name+" <"+l.addr+">",
		fmt.Sprintf("%s #%d: %s", l.name, issue, pick(r, []string{"what's new this week", "five things worth reading", "the year so far", "tools we love"})))
	h.add("List-Unsubscribe", "<https://"+l.addr[strings.IndexByte(l.addr, '@')+1:]+"/unsubscribe?u=pat>, <mailto:unsubscribe@example.com>")
	h.add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	h.add("Precedence", "bulk")
	h.add("MIME-Version", "1.0")
	boundary := fmt.Sprintf("alt_%016x", r.Uint64())
	h.add("Content-Type", "multipart/alternative; boundary=\""+boundary+"\"")
	var items []string
	for k := 1; k <= 3+r.IntN(3); k++ {
		items = append(items, fmt.Sprintf("%d. %s", k, strings.Join(paragraph(r, 50, false, 400), " ")))
	}
	text := fmt.Sprintf("This week in %s — issue #%d\n\n%s\n\nYou are receiving this because you subscribed.\n", l.topic, issue, strings.Join(items, "\n"))
	html := fmt.Sprintf("<html><body><h1>%s #%d</h1><ol>", l.name, issue)
	for _, it := range items {
		html += "<li>" + it[strings.IndexByte(it, ' ')+1:] + "</li>"
	}
	html += "</ol><p><a href=\"https://example.com/unsubscribe\">Unsubscribe</a></p></body></html>"
	body := []string{"--" + boundary, "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", ""}
	body = append(body, qp(text)...)
	body = append(body, "--"+boundary, "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "")
	body = append(body, qp(html)...)
	return append(body, "--"+boundary+"--")
}

func meetingInvite(r *rand.Rand, h *header, date time.Time) []string {
	from := pick(r, colleagues[:4])
	start := date.Add(time.Duration(24+r.IntN(72)) * time.Hour).Truncate(time.Hour).UTC()
	topic := pick(r, []string{"Quarterly planning", "POP3 client design review", "Release retrospective", "1:1"})
	envelope(r, h, date, from, address(from), "Invitation: "+topic+" @ "+start.Format("Mon Jan 2, 2006 15:04 MST"))
	h.add("MIME-Version", "1.0")
	boundary := fmt.Sprintf("cal_%016x", r.Uint64())
	h.add("Content-Type", "multipart/mixed; boundary=\""+boundary+"\"")
	stamp := func(t time.Time) string { return t.Format("20060102T150405Z") }
	return []string{
		"--" + boundary,
		"Content-Type: text/plain; charset=utf-8",
		"",
		"You have been invited to: " + topic,
		"When: " + start.Format(time.RFC1123),
		"Where: Room 4.2 / video call",
		"Organizer: " + from.name,
		"",
		"--" + boundary,
		"Content-Type: text/calendar; charset=utf-8; method=REQUEST",
		"Content-Disposition: attachment; filename=\"invite.ics\"",
		"",
		"BEGIN:VCALENDAR",
		"VERSION:2.0",
		"PRODID:-//popfetch//mailgen//EN",
		"METHOD:REQUEST",
		"BEGIN:VEVENT",
		fmt.Sprintf("UID:%016x@corp.example.com", r.Uint64()),
		"DTSTAMP:" + stamp(date.UTC()),
		"DTSTART:" + stamp(start),
		"DTEND:" + stamp(start.Add(time.Hour)),
		"SUMMARY:" + topic,
		"ORGANIZER;CN=" + from.name + ":mailto:" + from.addr,
		"ATTENDEE;RSVP=TRUE:mailto:" + me.addr,
		"END:VEVENT",
		"END:VCALENDAR",
		"--" + boundary + "--",
	}
}

func receipt(r *rand.Rand, h *header, date time.Time) []string {
	shop := pick(r, []person{{"Example Books", "orders@books.example.com"}, {"Coffee Corner", "receipts@coffee.example.net"}, {"Hardware Hub", "no-reply@hardware.example.org"}})
	order := 100000 + r.IntN(900000)
	envelope(r, h, date, shop, shop.name+" <"+shop.addr+">", fmt.Sprintf("Your receipt from %s #%d", shop.name, order))
	h.add("MIME-Version", "1.0")
	h.add("Content-Type", "text/plain; charset=utf-8")
	h.add("Content-Transfer-Encoding", "8bit")
	body := []string{fmt.Sprintf("Thank you for your order #%d.", order), "", "Item                              Qty      Price"}
	total := 0
	for k := 0; k < 1+r.IntN(4); k++ {
		price := 199 + r.IntN(5000)
		qty := 1 + r.IntN(3)
		total += price * qty
		item := pick(r, []string{"Paperback: The POP3 Handbook", "Espresso beans 250 g", "USB-C cable", "Notebook, dotted", "Stainless steel mug"})
		body = append(body, fmt.Sprintf("%-33s %3d %8s", item, qty, euro(price)))
	}
	body = append(body, strings.Repeat("-", 48), fmt.Sprintf("%-37s %10s", "Total (incl. VAT)", euro(total)), "",
		"Paid with card ending in "+fmt.Sprintf("%04d", r.IntN(10000))+".", "Questions? Reply to this email.")
	return body
}

func euro(cents int) string { return fmt.Sprintf("€%d.%02d", cents/100, cents%100) }

func listPost(r *rand.Rand, h *header, date time.Time) []string {
	from := pick(r, colleagues)
	list := pick(r, []struct{ id, addr, tag string }{
		{"dovecot.dovecot.org", "dovecot@dovecot.org", "dovecot"},
		{"golang-nuts.googlegroups.com", "golang-nuts@googlegroups.com", "go-nuts"},
		{"users.lists.example.org", "users@lists.example.org", "users"},
	})
	topic := pick(r, []string{"UIDL changes after migration", "pipelining and TLS", "maildir vs mbox for backups", "how to test a mail client"})
	subject := "[" + list.tag + "] " + topic
	reply := r.IntN(2) == 0
	if reply {
		subject = "Re: " + subject
	}
	envelope(r, h, date, from, address(from), subject)
	h.add("List-Id", "<"+list.id+">")
	h.add("List-Post", "<mailto:"+list.addr+">")
	h.add("Precedence", "list")
	h.add("Sender", list.tag+"-bounces@"+list.addr[strings.IndexByte(list.addr, '@')+1:])
	if reply {
		parent := messageID(r, "lists.example.org")
		h.add("In-Reply-To", parent)
		h.add("References", parent)
	}
	h.add("MIME-Version", "1.0")
	h.add("Content-Type", "text/plain; charset=utf-8; format=flowed")
	h.add("Content-Transfer-Encoding", "8bit")
	body := []string{}
	if reply {
		body = append(body, "On "+date.Add(-5*time.Hour).Format("Mon, Jan 2, 2006")+", someone wrote:")
		for _, l := range paragraph(r, 200, false, 70) {
			body = append(body, "> "+l)
		}
		body = append(body, "")
	}
	body = append(body, paragraph(r, 400+r.IntN(800), false, 72)...)
	return append(body, "", "-- ", from.name, "_______________________________________________", list.tag+" mailing list", list.addr)
}

func noteWithAttachment(r *rand.Rand, h *header, date time.Time) []string {
	from := pick(r, colleagues)
	file := pick(r, []string{"minutes.pdf", "budget-2024.pdf", "diagram.png"})
	envelope(r, h, date, from, address(from), "Files from today: "+file)
	h.add("MIME-Version", "1.0")
	boundary := fmt.Sprintf("mix_%016x", r.Uint64())
	h.add("Content-Type", "multipart/mixed; boundary=\""+boundary+"\"")
	ctype := "application/pdf"
	data := append([]byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), randBytes(r, 2048+r.IntN(6000))...)
	if strings.HasSuffix(file, ".png") {
		ctype = "image/png"
		data = append([]byte("\x89PNG\r\n\x1a\n"), randBytes(r, 2048+r.IntN(6000))...)
	}
	body := []string{"--" + boundary, "Content-Type: text/plain; charset=utf-8", "",
		"Hi Pat,", "", "attached is the file we talked about.", "", "Cheers,", strings.Fields(from.name)[0], "",
		"--" + boundary, "Content-Type: " + ctype + "; name=\"" + file + "\"",
		"Content-Transfer-Encoding: base64", "Content-Disposition: attachment; filename=\"" + file + "\"", ""}
	body = append(body, base64Lines(data)...)
	return append(body, "--"+boundary+"--")
}

func encodedWordNote(r *rand.Rand, h *header, date time.Time) []string {
	from := pick(r, colleagues[4:])
	subject := pick(r, []string{"Grüße aus München – Termin nächste Woche?", "Smørrebrød på fredag 🍞", "Café au lait & crème brûlée", "来週の会議について"})
	envelope(r, h, date, from, address(from), encodedWord(mime.BEncoding, subject))
	h.add("MIME-Version", "1.0")
	h.add("Content-Type", "text/plain; charset=utf-8")
	h.add("Content-Transfer-Encoding", "quoted-printable")
	text := "Hallo Pat,\n\nwie geht's? Hättest du nächste Woche Zeit für einen Kaffee?\n" +
		"Ich würde gern über die Übersicht sprechen — Grüße, " + from.name + "\n"
	return qp(text)
}

func notification(r *rand.Rand, h *header, date time.Time) []string {
	repo := pick(r, []string{"popfetch/popfetch", "example/mailtools", "pat/dotfiles"})
	num := 1 + r.IntN(500)
	what := pick(r, []string{"Fix UIDL cache race", "Add mbox locking", "Support APOP", "Flaky test on CI"})
	sender := person{"notifications", "notifications@code.example.com"}
	envelope(r, h, date, sender, "Code Host <"+sender.addr+">", fmt.Sprintf("[%s] %s (#%d)", repo, what, num))
	h.add("X-Auto-Response-Suppress", "All")
	h.add("Auto-Submitted", "auto-generated")
	h.add("MIME-Version", "1.0")
	h.add("Content-Type", "text/plain; charset=utf-8")
	return []string{
		fmt.Sprintf("%s commented on #%d:", pick(r, colleagues[:4]).name, num), "",
		"> " + strings.Join(paragraph(r, 80, false, 400), " "), "",
		fmt.Sprintf("View it on Code Host: https://code.example.com/%s/issues/%d", repo, num),
	}
}

func personalNote(r *rand.Rand, h *header, date time.Time) []string {
	from := pick(r, colleagues)
	envelope(r, h, date, from, address(from), pick(r, []string{"lunch?", "quick question", "Re: weekend plans", "photos from the trip", "the thing we discussed"}))
	h.add("MIME-Version", "1.0")
	h.add("Content-Type", "text/plain; charset=utf-8")
	body := []string{"Hi Pat,", ""}
	body = append(body, paragraph(r, 150+r.IntN(500), false, 72)...)
	return append(body, "", strings.Fields(from.name)[0])
}

func shipping(r *rand.Rand, h *header, date time.Time) []string {
	sender := person{"Parcel Service", "tracking@parcel.example.net"}
	code := fmt.Sprintf("PX%010d", r.Int64N(1e10))
	envelope(r, h, date, sender, sender.name+" <"+sender.addr+">", "Your parcel "+code+" is on its way")
	h.add("MIME-Version", "1.0")
	h.add("Content-Type", "text/plain; charset=us-ascii")
	return []string{
		"Good news! Your parcel " + code + " has left our depot.",
		"Expected delivery: " + date.Add(48*time.Hour).Format("Monday, January 2"),
		"", "Track it: https://parcel.example.net/t/" + code,
	}
}
