package redisquota_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestResetPublishesNoHostilePaddedFields: a corrupt or hostile hand
// writes, in a partition's state, a pause and a quota that the reset
// keeps (set just now, by another Store), each padded to megabytes in a
// form Lua reads as a number (leading spaces, leading zeros). The reset
// script published them as they were stored: its message carried
// megabytes to every member of the fleet, each Reset, and the reset state
// kept them. A value longer than any member writes, or not written as a
// member writes it, is none: the message carries none of it.
func TestResetPublishesNoHostilePaddedFields(t *testing.T) {
	for name, fields := range map[string]func(now int64) []any{
		"pause spaces": func(now int64) []any {
			return []any{"pause", strings.Repeat(" ", 4<<20) + strconv.FormatInt(now+int64(10*time.Minute/time.Microsecond), 10),
				"pset", now, "pby", "x"}
		},
		"limit zeros": func(now int64) []any {
			return []any{"limit", strings.Repeat("0", 4<<20) + "100", "window", "1000000", "lset", now, "lby", "x"}
		},
		"window spaces": func(now int64) []any {
			return []any{"limit", "100", "window", "1000000" + strings.Repeat(" ", 4<<20), "lset", now, "lby", "x"}
		},
		"plater zeros": func(now int64) []any {
			later := strconv.FormatInt(now, 10) + "," + strings.Repeat("0", 4<<20) +
				strconv.FormatInt(now+int64(5*time.Minute/time.Microsecond), 10) + ",x;"
			return []any{"pause", now + int64(10*time.Minute/time.Microsecond), "pset", now - int64(time.Hour/time.Microsecond), "pby", "x",
				"plater", later}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := twoMembers(t)
			rdb := newRedis(t, f.addr)
			ctx := context.Background()
			const part = "https://api.example.com reads"
			sub := rdb.Subscribe(ctx, f.prefix+":events")
			defer sub.Close()
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			now, err := rdb.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := rdb.HSet(ctx, f.a.StateKey(part), fields(now.UnixMicro())...).Err(); err != nil {
				t.Fatal(err)
			}
			if err := redisquota.RunReset(f.a, part, time.Minute, 1); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			for {
				m, err := sub.ReceiveMessage(rctx)
				if err != nil {
					t.Fatalf("no reset message: %v", err)
				}
				if !strings.HasPrefix(m.Payload, "r ") {
					continue
				}
				if len(m.Payload) > 1024 {
					t.Errorf("the reset's message is %d bytes long, the hostile field's; want none of it", len(m.Payload))
				}
				break
			}
			st, err := rdb.HGetAll(ctx, f.a.StateKey(part)).Result()
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range st {
				if len(v) > 1024 {
					t.Errorf("after the reset, the state's %s is %d bytes long; want the hostile value gone", k, len(v))
				}
			}
		})
	}
}
