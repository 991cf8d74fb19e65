/* SPDX-License-Identifier: MIT */
/*
 * Requests: submission from any thread through the ring, or from the owner
 * through the deferred list; completion by callback or completion handle.
 *
 * Handle-mode ordering edges:
 *  R3 (deliver, exchange acq_rel of state = DONE) publishes status and
 *     bytes; pairs with A3 (plx_req_test_mt / plx_req_wait_mt,
 *     load_acquire of state).
 *  A waiter sets WAITER with a CAS before sleeping on the futex; the
 *  exchange in R3 returns the old word, so the owner makes the wake-up
 *  syscall only when that bit was set. After R3 pollux never reads the
 *  request again (the waiter may free it at once); FUTEX_WAKE on its
 *  address is safe even if it was freed.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "reactor/hot.h"
#include "reactor/req.h"

static void futex_wake(uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void futex_wait(uint32_t *addr, uint32_t val, uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void deliver(struct plx_reactor *r, struct plx_req *req, int status,
		    uint64_t bytes)
{
	struct plx__reactor *x = plx__r(r);
	uint32_t old;

	req->status = status;
	req->bytes = bytes;
	req->plx_flags = 0;
	x->st.completions++;
	x->st.reqs_inflight--;
	if (req->cb) {
		plx__store_relaxed(&req->plx_state, PLX__REQ_IDLE);
		req->cb(r, req);
		return;
	}
	/* R3: publish the result; pairs with A3. */
	old = plx__exchange_acq_rel(&req->plx_state, PLX__REQ_DONE);
	if (old & PLX__REQ_WAITER)
		futex_wake(&req->plx_state);
}

static void defer(struct plx__reactor *x, struct plx_req *req, uint32_t flag)
{
	req->plx_flags = flag;
	req->plx_next = NULL;
	if (x->deferred.tail)
		x->deferred.tail->plx_next = req;
	else
		x->deferred.head = req;
	x->deferred.tail = req;
}

static void call(struct plx_reactor *r, struct plx_req *req)
{
	int rc = req->plx_fn(r, req);

	if (rc != PLX_EINPROGRESS)
		deliver(r, req, rc, 0);
}

void plx__req_run(struct plx_reactor *r, struct plx_req *req)
{
	req->plx_flags = 0;
	call(r, req);
}

PLX__HOT int plx__req_run_deferred(struct plx_reactor *r)
{
	struct plx__reactor *x = plx__r(r);
	struct plx_req *req = x->deferred.head;
	int n = 0;

	/* take the list as it is: entries added by these callbacks wait for
	 * the next poll, so one poll's work stays bounded */
	x->deferred.head = x->deferred.tail = NULL;
	while (req) {
		struct plx_req *next = req->plx_next;

		n++;
		if (req->plx_flags == PLX__RF_CALL)
			call(r, req);
		else
			deliver(r, req, req->status, req->bytes);
		req = next;
	}
	return n;
}

PLX_API void plx_req_init(struct plx_req *req, plx_req_cb cb, void *user)
{
	req->cb = cb;
	req->user = user;
	req->status = 0;
	req->bytes = 0;
	req->plx_next = NULL;
	req->plx_fn = NULL;
	req->plx_flags = 0;
	req->plx_op = 0;
	plx__store_relaxed(&req->plx_state, PLX__REQ_IDLE);
}

static int claim(struct plx_req *req, plx_call_fn fn)
{
	uint32_t st;

	if (!req || !fn)
		return PLX_EINVAL;
	/* the submitter owns an idle or completed request: relaxed suffices */
	st = plx__load_relaxed(&req->plx_state) & PLX__REQ_STATE_MASK;
	if (st == PLX__REQ_QUEUED)
		return PLX_EBUSY;
	req->plx_fn = fn;
	req->plx_flags = 0;
	req->status = 0;
	req->bytes = 0;
	plx__store_relaxed(&req->plx_state, PLX__REQ_QUEUED);
	return 0;
}

PLX_API int plx_submit_call_mt(struct plx_reactor *r, struct plx_req *req,
			       plx_call_fn fn)
{
	struct plx__reactor *x = plx__r(r);
	int rc = claim(req, fn);

	if (rc)
		return rc;
	/* S1 inside push; R1 publishes the request's fields. */
	if (PLX__UNLIKELY(plx__ring_push(x->ring, req))) {
		plx__store_relaxed(&req->plx_state, PLX__REQ_IDLE);
		plx__fetch_add_relaxed(&x->ring_full, 1);
		return PLX_EAGAIN;
	}
	/* S3: pairs with S4 in plx_reactor_arm(); see reactor.c. Only the
	 * producer whose exchange takes the flag writes the doorbell. */
	if (PLX__UNLIKELY(plx__load_seq_cst(&x->sleeping)) &&
	    plx__exchange_acq_rel(&x->sleeping, 0)) {
		uint64_t one = 1;
		ssize_t w = write(x->evfd, &one, sizeof(one));

		(void)w; /* only EAGAIN at 2^64-1 pending: already readable */
	}
	return 0;
}

PLX_API int plx_submit_call(struct plx_reactor *r, struct plx_req *req,
			    plx_call_fn fn)
{
	struct plx__reactor *x = plx__r(r);
	int rc;

	PLX__ASSERT_OWNER(x);
	rc = claim(req, fn);
	if (rc)
		return rc;
	x->st.reqs_inflight++;
	defer(x, req, PLX__RF_CALL);
	return 0;
}

PLX__HOT int plx__req_begin(struct plx_reactor *r, struct plx_req *req)
{
	struct plx__reactor *x = plx__r(r);
	uint32_t st;

	if (!req)
		return PLX_EINVAL;
	st = plx__load_relaxed(&req->plx_state) & PLX__REQ_STATE_MASK;
	if (st == PLX__REQ_QUEUED)
		return PLX_EBUSY;
	req->plx_flags = 0;
	req->status = 0;
	req->bytes = 0;
	plx__store_relaxed(&req->plx_state, PLX__REQ_QUEUED);
	x->st.reqs_inflight++;
	return 0;
}

PLX__HOT PLX_API int plx_req_complete(struct plx_reactor *r,
				      struct plx_req *req, int status,
				      uint64_t bytes)
{
	struct plx__reactor *x = plx__r(r);

	PLX__ASSERT_OWNER(x);
	if (!req ||
	    (plx__load_relaxed(&req->plx_state) & PLX__REQ_STATE_MASK) !=
		    PLX__REQ_QUEUED ||
	    req->plx_flags)
		return PLX_EINVAL;
	req->status = status;
	req->bytes = bytes;
	defer(x, req, PLX__RF_COMPLETE);
	return 0;
}

PLX__HOT PLX_API int plx_req_test_mt(const struct plx_req *req)
{
	/* A3: pairs with R3 in deliver(). */
	return (plx__load_acquire(&req->plx_state) & PLX__REQ_STATE_MASK) ==
	       PLX__REQ_DONE;
}

PLX_API int plx_req_wait_mt(struct plx_req *req, uint64_t timeout_ns)
{
	uint64_t start = plx_now_ns();
	uint64_t deadline = timeout_ns > UINT64_MAX - start ?
				    UINT64_MAX :
				    start + timeout_ns;
	/* spin this long before sleeping: a busy-polling owner answers in
	 * about a microsecond, a futex sleep costs several */
	uint64_t spin_until = start + 20000;
	uint32_t st;

	if (!req || req->cb)
		return PLX_EINVAL;
	if (!timeout_ns)
		return plx_req_test_mt(req) ? 0 : PLX_ETIMEDOUT;
	for (unsigned i = 0;; i++) {
		/* A3: pairs with R3 in deliver(). */
		st = plx__load_acquire(&req->plx_state);
		if ((st & PLX__REQ_STATE_MASK) == PLX__REQ_DONE)
			return 0;
		if ((st & PLX__REQ_STATE_MASK) == PLX__REQ_IDLE)
			return PLX_EINVAL;
		if ((i & 63) == 63) {
			uint64_t now = plx_now_ns();

			if (now >= deadline)
				return PLX_ETIMEDOUT;
			if (now >= spin_until)
				break;
		}
		plx__cpu_relax();
	}
	for (;;) {
		uint64_t now = plx_now_ns();

		st = plx__load_acquire(&req->plx_state); /* A3 */
		if ((st & PLX__REQ_STATE_MASK) == PLX__REQ_DONE)
			return 0;
		if (now >= deadline)
			return PLX_ETIMEDOUT;
		if (!(st & PLX__REQ_WAITER) &&
		    !plx__cas_acq_rel(&req->plx_state, &st,
				      st | PLX__REQ_WAITER))
			continue; /* state moved: re-read */
		futex_wait(&req->plx_state, st | PLX__REQ_WAITER,
			   deadline - now);
	}
}
