package resilient

// This file holds the doubly linked list that orders the entries of the
// Transport's bounded tables for eviction (breakers, rate-limit partitions,
// the hosts of WithMaxInFlight) and the attempts waiting for a host's slot.

// listNode is an element's links in a list: an element type embeds it.
type listNode[T any] struct {
	prev, next *T
}

// listElem is the pointer type of a list's elements: it returns the links
// the element embeds.
type listElem[T any] interface {
	*T
	links() *listNode[T]
}

// list is a doubly linked list of elements that hold their own links, so
// that adding and removing one allocates nothing. The zero list is empty.
// It is not safe for concurrent use: its owner's lock guards it.
type list[T any, P listElem[T]] struct {
	head, tail *T // the front and the back
	n          int
}

// pushFront adds e, in no list, at the front of l.
func (l *list[T, P]) pushFront(e *T) {
	n := P(e).links()
	n.prev, n.next = nil, l.head
	if l.head != nil {
		P(l.head).links().prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.n++
}

// pushBack adds e, in no list, at the back of l.
func (l *list[T, P]) pushBack(e *T) {
	n := P(e).links()
	n.prev, n.next = l.tail, nil
	if l.tail != nil {
		P(l.tail).links().next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
}

// remove takes e out of l, and clears its links. An element that is in no
// list is left as it is.
func (l *list[T, P]) remove(e *T) {
	n := P(e).links()
	if n.prev == nil && l.head != e {
		return // in no list (a list's front has no prev)
	}
	if n.prev != nil {
		P(n.prev).links().next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		P(n.next).links().prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
	l.n--
}
