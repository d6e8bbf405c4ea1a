package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestCompareSmallWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload against real loopback servers")
	}
	rep, err := Compare(context.Background(), Config{Calls: 200, Workers: 16, Profile: "mixed", Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ours.Succeeded <= rep.Plain.Succeeded {
		t.Errorf("resilient succeeded %d times, plain %d: want more", rep.Ours.Succeeded, rep.Plain.Succeeded)
	}
	if rep.Ours.DuplicatePosts != 0 {
		t.Errorf("resilient created %d duplicate posts, want 0", rep.Ours.DuplicatePosts)
	}
	if rep.Plain.Failed == 0 {
		t.Error("the plain client saw no failure: the fault profile injected nothing")
	}
	for _, r := range []Run{rep.Plain, rep.Ours} {
		if r.Succeeded+r.Failed != 200 || r.ServerAttempts < 200*r.Succeeded/200 || r.P99 < r.P50 {
			t.Errorf("inconsistent run %+v", r)
		}
	}
	var buf bytes.Buffer
	rep.WriteTable(&buf)
	for _, want := range []string{"calls succeeded", "duplicate posts created", "429s received", "server attempts per call", "latency p99", "breaker trips"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestRunJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload against real loopback servers")
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-calls", "60", "-workers", "8", "-profile", "outage", "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, out.String())
	}
	if rep.Profile != "outage" || rep.Calls != 60 || rep.Plain.Succeeded != 0 || rep.Ours.Succeeded != 0 {
		t.Errorf("unexpected report %+v", rep)
	}
	if rep.Ours.BreakerTrips == 0 {
		t.Error("the breaker never tripped during an outage")
	}
	if rep.Ours.AttemptsPerCall >= rep.Plain.AttemptsPerCall*6 {
		t.Errorf("resilient made %.2f attempts per call in an outage", rep.Ours.AttemptsPerCall)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-calls", "0"},
		{"-workers", "-1"},
		{"-profile", "nope"},
		{"-calls", "many"},
		{"-unknown"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if errOut.Len() == 0 {
			t.Errorf("%v: no message on stderr", args)
		}
	}
}

func TestWorkloadDeterministic(t *testing.T) {
	cfg := Config{Calls: 500, Workers: 1, Profile: "mixed", Seed: 3}
	a, b := workload(cfg), workload(cfg)
	writes := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d differs between two workloads of the same seed", i)
		}
		if a[i].body != "" {
			writes++
		}
	}
	if writes < 150 || writes > 350 {
		t.Errorf("%d writes in 500 calls, want a mix", writes)
	}
}
