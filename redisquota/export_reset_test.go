package redisquota

import "github.com/resilienthttp/resilient"

// PauseDirtyCleared reports whether the partition q has no pause left to
// write: its refiller wrote the latest.
func PauseDirtyCleared(q resilient.QuotaPartition) bool { return q.(*part).pauseDirty.Load() == 0 }
