package redisquota_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// scriptReloaded is a go-redis hook that runs the first pipeline that
// carries the script whose hash is hash as a Redis that lost its scripts
// (restarted, or its script cache flushed) runs it while another member
// loads the script again: its commands run one after another, and the
// first EVALSHA of the script is refused with NOSCRIPT, unless an EVAL of
// its source ran before it; the other member's EVAL, which loads the
// script, runs right after that refusal, and the later EVALSHAs run.
type scriptReloaded struct {
	hash string
	done atomic.Bool
}

func (h *scriptReloaded) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *scriptReloaded) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *scriptReloaded) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		carries := false
		for _, c := range cmds {
			if a := c.Args(); len(a) > 1 && a[1] == h.hash {
				carries = true
			}
		}
		if !carries || !h.done.CompareAndSwap(false, true) {
			return next(ctx, cmds)
		}
		lost := true
		var first error
		for _, c := range cmds {
			a := c.Args()
			name, _ := a[0].(string)
			if lost && strings.EqualFold(name, "evalsha") && a[1] == h.hash {
				c.SetErr(noScript{})
				lost = false // the other member's EVAL
				if first == nil {
					first = noScript{}
				}
				continue
			}
			if strings.EqualFold(name, "eval") {
				lost = false
			}
			if err := next(ctx, []redis.Cmder{c}); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// TestCloseWritesPausesInOrderWhenScriptsReloaded proves that Close's
// pipelined pauses keep the order of their Pauses in a Redis that lost
// its scripts while another member loads them again: the first write
// refused with NOSCRIPT and the later ones run must not leave the first
// to run last (the host's global limit paused before one of its routes,
// which writeOrder exists to prevent: see TestPausesRunInOrder).
func TestCloseWritesPausesInOrderWhenScriptsReloaded(t *testing.T) {
	lost := &scriptReloaded{hash: redisquota.PauseHash}
	closePausesInOrder(t, lost)
	if !lost.done.Load() {
		t.Fatal("Close sent no pipeline of the pause script, want its pauses' writes in one")
	}
}
