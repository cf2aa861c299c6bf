package deliver

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestJournalRoundTrip(t *testing.T) {
	j := &appendJournal{Mbox: "/home/a/mail box\n", Dev: 2049, Ino: 77, Start: 1234, Sep: "\n",
		Msgs: []spooledMessage{{ID: "uid 1", End: 10}, {ID: "\xff\x00", End: 25}, {ID: "", End: 26}}}
	got, err := parseJournal(j.marshal())
	if err != nil || !reflect.DeepEqual(got, j) {
		t.Fatalf("%+v %v, want %+v", got, err, j)
	}
	// a journal cut short is no journal: no append followed it
	data := j.marshal()
	for n := 0; n < len(data)-1; n++ {
		if _, err := parseJournal(data[:n]); !errors.Is(err, errJournal) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
}

func TestRecoverAppend(t *testing.T) {
	before := "From a Mon Jan  1 00:00:00 2024\nold\n"
	spool := "From b Mon Jan  1 00:00:01 2024\none\n\nFrom c Mon Jan  1 00:00:02 2024\ntwo\n\n"
	j := &appendJournal{Mbox: "m", Start: int64(len(before)), Sep: "\n",
		Msgs: []spooledMessage{{ID: "1", End: 37}, {ID: "2", End: int64(len(spool))}}}
	if spool[:37] != "From b Mon Jan  1 00:00:01 2024\none\n\n" {
		t.Fatalf("bad fixture %q", spool[:37])
	}
	whole := before + "\n" + spool
	for _, tc := range []struct {
		name  string
		mbox  string
		whole []string
		trunc int64
		other bool
	}{
		{"nothing appended", before, nil, -1, false},
		{"the separator alone", before + "\n", nil, int64(len(before)), false},
		{"cut in the first", whole[:len(before)+10], nil, int64(len(before)), false},
		{"first whole", whole[:len(before)+1+37], []string{"1"}, -1, false},
		{"cut in the second", whole[:len(whole)-3], []string{"1"}, int64(len(before) + 1 + 37), false},
		{"all whole", whole, []string{"1", "2"}, -1, false},
		{"all whole, another after", whole + "From x\nthree\n\n", []string{"1", "2"}, -1, false},
		{"cut, another after", whole[:len(before)+20] + "From x\nthree\n\n", nil, -1, true},
		{"cut after the first, another after", whole[:len(before)+1+37] + "From x\nthree\n\n", []string{"1"}, -1, true},
		{"rewritten shorter", "From a\n", nil, -1, true},
	} {
		rec, err := recoverAppend(j, strings.NewReader(tc.mbox), int64(len(tc.mbox)), strings.NewReader(spool))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rec.Whole, tc.whole) || rec.TruncateTo != tc.trunc || rec.Foreign != tc.other {
			t.Errorf("%s: %+v, want whole %v truncate %d foreign %v", tc.name, rec, tc.whole, tc.trunc, tc.other)
		}
	}
}

func TestCommonPrefix(t *testing.T) {
	a := bytes.Repeat([]byte("x"), 100000)
	b := append(bytes.Clone(a[:70000]), 'y')
	if n, err := commonPrefix(bytes.NewReader(a), bytes.NewReader(b)); err != nil || n != 70000 {
		t.Fatalf("%d %v", n, err)
	}
	if n, _ := commonPrefix(bytes.NewReader(a), bytes.NewReader(a)); n != 100000 {
		t.Fatalf("%d", n)
	}
}
