package redisquota

import (
	"runtime"
	"weak"
)

// This file holds what a Store keeps of the partitions and retry budgets
// it dropped to make room (past maxPartitions of either) while something
// may still hold them: a Transport keeps the QuotaPartitions and
// SharedBudgets it was given for as long as it uses them, and a dropped
// one that heard the fleet no more would send through the fleet's pauses
// and spend its budget alone. The Store keeps a weak pointer to each,
// which does not keep it alive, by id: the fleet's messages, the resyncs,
// the budgets' syncs and markLoaded find it there while it lives, and
// Partition and Budget return it (and hold it again) instead of making a
// second one of the same name. A cleanup deletes the entry once the
// object is collected, so that the Store's memory is bounded by its tables
// and what is still held.

// dropped is the entry of an object of type T that the Store dropped to
// make room: a weak pointer to it, and the cleanup that deletes the entry
// once it is collected.
type dropped[T any] struct {
	wp      weak.Pointer[T]
	cleanup runtime.Cleanup
}

// keepDropped records, in m under id, v, which the Store has just dropped
// from its table, until v is collected. s.mu is held.
func keepDropped[T any](s *Store, m map[string]dropped[T], id string, v *T) {
	if old, ok := m[id]; ok {
		old.cleanup.Stop()
	}
	wp := weak.Make(v)
	// The cleanup's argument, wp, does not keep v alive; nor does the
	// function, which closes over the Store, the map and the id only.
	c := runtime.AddCleanup(v, func(wp weak.Pointer[T]) {
		s.mu.Lock()
		if e, ok := m[id]; ok && e.wp == wp {
			delete(m, id)
		}
		s.mu.Unlock()
	}, wp)
	m[id] = dropped[T]{wp: wp, cleanup: c}
}

// takeDropped returns the object the Store dropped under id, if it still
// lives, and forgets its entry: the caller holds it again in its table (a
// dead entry is forgotten too). s.mu is held.
func takeDropped[T any](m map[string]dropped[T], id string) *T {
	e, ok := m[id]
	if !ok {
		return nil
	}
	e.cleanup.Stop()
	delete(m, id)
	return e.wp.Value()
}

// findDropped returns the object the Store dropped under id, if it still
// lives; nil if none. s.mu is held.
func findDropped[T any](m map[string]dropped[T], id string) *T {
	if e, ok := m[id]; ok {
		return e.wp.Value()
	}
	return nil
}

// eachDropped calls fn with each object of m that still lives. s.mu is
// held.
func eachDropped[T any](m map[string]dropped[T], fn func(*T)) {
	for _, e := range m {
		if v := e.wp.Value(); v != nil {
			fn(v)
		}
	}
}
