package turnserver

import "sync"

// quota counts relay sockets per user and in total. A slot is taken when a
// relay socket is opened and given back when it closes, so the count is
// exactly the relay resources in use.
type quota struct {
	maxPerUser int
	maxTotal   int

	mu      sync.Mutex
	total   int
	perUser map[string]int // user ID -> open relay sockets; zero entries are deleted
}

func newQuota(maxPerUser, maxTotal int) *quota {
	return &quota{maxPerUser: maxPerUser, maxTotal: maxTotal, perUser: make(map[string]int)}
}

// admits reports whether user could take another slot now. pion/turn asks
// this before creating an allocation and answers 486 when it is false.
func (q *quota) admits(user string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total < q.maxTotal && q.perUser[user] < q.maxPerUser
}

// take claims a slot for user, atomically with the check, so concurrent
// Allocate requests on different listeners cannot overshoot the limits that
// admits checked without holding a slot.
func (q *quota) take(user string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.total >= q.maxTotal || q.perUser[user] >= q.maxPerUser {
		return false
	}
	q.total++
	q.perUser[user]++
	return true
}

// give returns a slot taken by take.
func (q *quota) give(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.total--
	if q.perUser[user]--; q.perUser[user] <= 0 {
		delete(q.perUser, user)
	}
}

// UserAllocationBuckets are the upper bounds of Stats.UserAllocations'
// buckets: allocations held by one user. A fixed set, so the metric's
// cardinality does not grow with the number of users (a series per user
// would let every node ID that ever allocated grow the scrape).
var UserAllocationBuckets = [...]int{1, 2, 4, 8, 16, 32, 64, 128}

// UserAllocations is a histogram of users by the allocations they hold now.
type UserAllocations struct {
	// Users counts users with at least one allocation.
	Users int
	// Max is the most allocations one user holds.
	Max int
	// Buckets[i] counts users holding at most UserAllocationBuckets[i]
	// allocations and more than the bound before; the last counts the rest.
	// Not cumulative.
	Buckets [len(UserAllocationBuckets) + 1]uint64
}

// histogram walks the per-user counts: O(users), at scrape time only.
func (q *quota) histogram() UserAllocations {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := UserAllocations{Users: len(q.perUser)}
	for _, n := range q.perUser {
		h.Max = max(h.Max, n)
		i := 0
		for i < len(UserAllocationBuckets) && n > UserAllocationBuckets[i] {
			i++
		}
		h.Buckets[i]++
	}
	return h
}
