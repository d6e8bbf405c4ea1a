package resilient

import (
	"slices"
	"testing"
)

type listItem struct {
	listNode[listItem]
	v int
}

func (e *listItem) links() *listNode[listItem] { return &e.listNode }

// listValues returns l's values front to back, and checks that walking it back
// to front gives the same, and that its count is its length.
func listValues(t *testing.T, l *list[listItem, *listItem]) []int {
	t.Helper()
	var fwd, back []int
	for e := l.head; e != nil; e = e.next {
		fwd = append(fwd, e.v)
	}
	for e := l.tail; e != nil; e = e.prev {
		back = append([]int{e.v}, back...)
	}
	if !slices.Equal(fwd, back) || l.n != len(fwd) {
		t.Fatalf("list front to back %v, back to front %v, n %d: inconsistent", fwd, back, l.n)
	}
	return fwd
}

func TestList(t *testing.T) {
	var l list[listItem, *listItem]
	items := make([]*listItem, 5)
	for i := range items {
		items[i] = &listItem{v: i}
	}
	l.pushFront(items[1])
	l.pushFront(items[0])
	l.pushBack(items[2])
	l.pushBack(items[3])
	if got := listValues(t, &l); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("after the pushes: %v, want [0 1 2 3]", got)
	}
	for _, tc := range []struct {
		remove *listItem
		want   []int
	}{
		{items[4], []int{0, 1, 2, 3}}, // in no list: nothing changes
		{items[1], []int{0, 2, 3}},    // the middle
		{items[0], []int{2, 3}},       // the front
		{items[3], []int{2}},          // the back
		{items[3], []int{2}},          // removed already
		{items[2], nil},               // the last
	} {
		l.remove(tc.remove)
		if got := listValues(t, &l); !slices.Equal(got, tc.want) {
			t.Fatalf("remove(%d) = %v, want %v", tc.remove.v, got, tc.want)
		}
		if tc.remove.prev != nil || tc.remove.next != nil {
			t.Errorf("remove(%d) left its links set", tc.remove.v)
		}
	}
	if l.head != nil || l.tail != nil {
		t.Errorf("empty list: head %v, tail %v, want nil", l.head, l.tail)
	}
	l.pushBack(items[1])
	if got := listValues(t, &l); !slices.Equal(got, []int{1}) {
		t.Errorf("a push after emptying: %v, want [1]", got)
	}
}
