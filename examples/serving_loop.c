/* SPDX-License-Identifier: MIT */
/*
 * serving_loop: pollux inside an application's own serving loop.
 *
 * The main thread owns a reactor and runs the application's loop: each
 * turn it drains its own request queue (the "work" of the application)
 * and calls plx_reactor_poll(). Two producer threads hand it work without
 * locks, through the reactor's request rings:
 *
 *  - a request: plx_submit_call_mt() runs enqueue() on the loop's thread,
 *    which puts the job on the application queue and returns
 *    PLX_EINPROGRESS; the loop completes it (plx_req_complete) once it has
 *    done the work. The producer waits on the completion handle.
 *  - a write of the result into a "storage" peer's registered region over
 *    TCP: plx_ep_write_mt() with a completion handle; the producer waits
 *    for it (completion = the data is in the peer's memory).
 *
 * The storage peer is a second reactor on its own thread (it sleeps in
 * plx_reactor_wait() when idle). The loop finds its region by name
 * (plx_ep_resolve).
 *
 * Two modes:
 *   busy   the loop spins: work, poll, work, poll...
 *   sleep  when a turn found nothing to do, the loop arms the reactor
 *          (plx_reactor_arm) and sleeps in its own poll() on
 *          plx_reactor_fd(); producers pace themselves, so it does sleep.
 *
 *   serving_loop [--mode busy|sleep|both] [--requests N]
 *
 * Prints what each run did and checks every record in the storage region.
 */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pollux/pollux.h"
#include "pollux/tcp.h"

#define PRODUCERS 2
#define RECORD 64	      /* bytes per result record */
#define SLOTS 1024	      /* records per producer in storage */
#define QUEUE_CAP 64	      /* application queue (>= producers) */
#define RUN_NS 30000000000ull /* a run must finish within 30 s */
#define WAIT_NS 5000000000ull /* one request / write: 5 s at most */

/* ---- the storage peer --------------------------------------------------- */

struct storage {
	struct plx_reactor r;
	struct plx_region reg;
	uint8_t *mem; /* PRODUCERS x SLOTS records */
	uint16_t port;
	int ready; /* 1 listening, -1 failed */
	int stop;
};

static void *storage_main(void *arg)
{
	struct storage *s = arg;
	size_t len = (size_t)PRODUCERS * SLOTS * RECORD;
	int rc;

	s->mem = calloc(1, len);
	rc = s->mem ? plx_reactor_init(&s->r, NULL) : PLX_ENOMEM;
	if (!rc)
		rc = plx_tcp_init(&s->r, NULL);
	if (!rc)
		rc = plx_tcp_listen(&s->r, "127.0.0.1", 0, &s->port);
	if (!rc)
		rc = plx_mem_register(&s->r, &s->reg, s->mem, len,
				      PLX_ACCESS_REMOTE_WRITE);
	if (!rc)
		rc = plx_mem_name(&s->r, &s->reg, "storage");
	if (rc) {
		fprintf(stderr, "storage set-up: %s\n", plx_strerror(rc));
		__atomic_store_n(&s->ready, -1, __ATOMIC_RELEASE);
		return NULL;
	}
	__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
		plx_reactor_wait(&s->r, 10);
	plx_mem_deregister(&s->r, &s->reg);
	plx_tcp_shutdown(&s->r);
	while (plx_reactor_fini(&s->r) == PLX_EBUSY)
		plx_reactor_wait(&s->r, 10);
	return NULL;
}

/* ---- the application ---------------------------------------------------- */

struct job {
	struct plx_req req; /* first: enqueue() gets the job back by a cast */
	uint64_t input;
	uint64_t output; /* written by the loop */
};

struct app {
	struct plx_reactor r;
	struct plx_ep *ep;
	struct plx_desc storage; /* resolved by name */
	int connected, down;
	/* the application's own request queue: owner thread only */
	struct job *queue[QUEUE_CAP];
	uint32_t qhead, qtail;
	/* counters */
	uint64_t turns, handled, sleeps, wakeups, timeouts, arm_busy;
	uint64_t writes_done, requests_done; /* by producers (atomic) */
	int producers_left;		     /* atomic */
	int failed;			     /* atomic */
	int sleep_mode;
	uint64_t requests; /* per producer */
};

static uint64_t work(uint64_t x)
{
	/* the "request": a few rounds of a 64-bit mixer */
	for (int i = 0; i < 16; i++) {
		x ^= x >> 31;
		x *= 0x7fb5d329728ea185ull;
		x ^= x >> 27;
	}
	return x;
}

/* Runs on the loop's thread, in the ring phase of plx_reactor_poll(). */
static int enqueue(struct plx_reactor *r, struct plx_req *req)
{
	struct app *a = req->user;

	(void)r;
	if (a->qtail - a->qhead == QUEUE_CAP)
		return PLX_EAGAIN; /* the producer sees it and retries */
	a->queue[a->qtail++ % QUEUE_CAP] = (struct job *)req;
	return PLX_EINPROGRESS; /* completed by drain_queue() */
}

/* The application's work for one turn: at most @budget jobs. */
static uint32_t drain_queue(struct app *a, uint32_t budget)
{
	uint32_t n = 0;

	while (a->qhead != a->qtail && n < budget) {
		struct job *j = a->queue[a->qhead++ % QUEUE_CAP];

		j->output = work(j->input);
		plx_req_complete(&a->r, &j->req, 0, 0);
		n++;
	}
	a->handled += n;
	return n;
}

struct producer {
	struct app *a;
	int id;
	pthread_t th;
};

static void fail(struct app *a, const char *what, int rc)
{
	fprintf(stderr, "%s: %s\n", what, plx_strerror(rc));
	__atomic_store_n(&a->failed, 1, __ATOMIC_RELAXED);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct app *a = p->a;
	struct job job;
	struct plx_op op;
	uint8_t rec[RECORD];
	int rc;

	plx_op_init(&op, NULL, NULL); /* completion handle */
	for (uint64_t i = 0; i < a->requests; i++) {
		uint64_t in = ((uint64_t)p->id << 48) | i;

		if (__atomic_load_n(&a->failed, __ATOMIC_RELAXED))
			break;
		/* 1: a request for the loop; wait for its result */
		do {
			plx_req_init(&job.req, NULL, a);
			job.input = in;
			rc = plx_submit_call_mt(&a->r, &job.req, enqueue);
			if (rc == PLX_EAGAIN) {
				sched_yield(); /* ring full: try again */
				continue;
			}
			if (!rc)
				rc = plx_req_wait_mt(&job.req, WAIT_NS);
			if (!rc)
				rc = job.req.status;
		} while (rc == PLX_EAGAIN);
		if (rc || job.output != work(in)) {
			fail(a, "request", rc ? rc : PLX_EBADMSG);
			break;
		}
		__atomic_fetch_add(&a->requests_done, 1, __ATOMIC_RELAXED);

		/* 2: store the result in the peer's region */
		memset(rec, 0, sizeof(rec));
		memcpy(rec, &in, 8);
		memcpy(rec + 8, &job.output, 8);
		rc = plx_ep_write_mt(a->ep, &op, rec, sizeof(rec), &a->storage,
				     ((uint64_t)p->id * SLOTS + i % SLOTS) *
					     RECORD);
		while (rc == PLX_EAGAIN) {
			sched_yield();
			rc = plx_ep_write_mt(
				a->ep, &op, rec, sizeof(rec), &a->storage,
				((uint64_t)p->id * SLOTS + i % SLOTS) * RECORD);
		}
		if (!rc)
			rc = plx_req_wait_mt(&op.req, WAIT_NS);
		if (!rc)
			rc = op.req.status;
		if (rc) {
			fail(a, "write", rc);
			break;
		}
		__atomic_fetch_add(&a->writes_done, 1, __ATOMIC_RELAXED);
		if (a->sleep_mode)
			usleep(100); /* a trickle: the loop goes idle between */
	}
	__atomic_fetch_sub(&a->producers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void on_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		     int status, void *arg)
{
	struct app *a = arg;

	(void)r;
	(void)ep;
	if (event == PLX_EP_CONNECTED)
		a->connected = 1;
	if (event == PLX_EP_DOWN && !a->down) {
		a->down = 1;
		fprintf(stderr, "storage connection lost: %s\n",
			plx_strerror(status));
	}
}

/* Connect to the storage peer and resolve its region by name. */
static int app_connect(struct app *a, uint16_t port)
{
	struct plx_tcp_config cfg;
	struct plx_op op;
	uint64_t end = plx_now_ns() + WAIT_NS;
	int rc;

	plx_tcp_config_init(&cfg);
	cfg.event_cb = on_event;
	cfg.cb_arg = a;
	rc = plx_tcp_init(&a->r, &cfg);
	if (!rc)
		rc = plx_tcp_connect(&a->r, "127.0.0.1", port, &a->ep);
	plx_op_init(&op, NULL, NULL);
	if (!rc) /* may be submitted before the handshake completes */
		rc = plx_ep_resolve(a->ep, &op, "storage", &a->storage);
	if (rc) {
		fprintf(stderr, "connect: %s\n", plx_strerror(rc));
		return rc;
	}
	while (!plx_req_test_mt(&op.req) && plx_now_ns() < end)
		plx_reactor_poll(&a->r);
	if (!plx_req_test_mt(&op.req)) {
		/* still in flight: cancel, and wait for the completion */
		plx_op_cancel(&a->r, &op);
		while (!plx_req_test_mt(&op.req))
			plx_reactor_poll(&a->r);
		fprintf(stderr, "resolve: timed out\n");
		return PLX_ETIMEDOUT;
	}
	if (op.req.status) {
		fprintf(stderr, "resolve \"storage\": %s\n",
			plx_strerror(op.req.status));
		return op.req.status;
	}
	return 0;
}

/* The application's serving loop. Returns when the producers are done. */
static int serve(struct app *a)
{
	uint64_t end = plx_now_ns() + RUN_NS;

	for (;;) {
		uint32_t did = drain_queue(a, 16);
		int ev = plx_reactor_poll(&a->r);
		struct pollfd pfd;

		a->turns++;
		if (!__atomic_load_n(&a->producers_left, __ATOMIC_ACQUIRE) &&
		    a->qhead == a->qtail)
			return 0;
		if (a->down || plx_now_ns() > end) {
			fprintf(stderr, "serving loop: %s\n",
				a->down ? "storage is down" : "run too long");
			__atomic_store_n(&a->failed, 1, __ATOMIC_RELAXED);
			return 1;
		}
		if (!a->sleep_mode || did || ev)
			continue;
		/* idle turn: sleep in our own poll() until pollux has work */
		if (plx_reactor_arm(&a->r) == PLX_EBUSY) {
			a->arm_busy++;
			continue;
		}
		a->sleeps++;
		pfd.fd = plx_reactor_fd(&a->r);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) > 0)
			a->wakeups++;
		else
			a->timeouts++;
	}
}

static int verify(const struct storage *s, uint64_t requests)
{
	int bad = 0;
	uint64_t n = 0;

	for (int p = 0; p < PRODUCERS; p++)
		for (uint64_t k = 0; k < SLOTS && k < requests; k++) {
			/* the last request written to slot k */
			uint64_t i = k + (requests - 1 - k) / SLOTS * SLOTS;
			uint64_t in = ((uint64_t)p << 48) | i, got_in, got_out;
			const uint8_t *rec =
				s->mem + ((uint64_t)p * SLOTS + k) * RECORD;

			memcpy(&got_in, rec, 8);
			memcpy(&got_out, rec + 8, 8);
			if (got_in != in || got_out != work(in))
				bad++;
			n++;
		}
	if (bad)
		fprintf(stderr, "storage: %d of %llu records wrong\n", bad,
			(unsigned long long)n);
	else
		printf("  storage: all %llu records verified\n",
		       (unsigned long long)n);
	return bad ? 1 : 0;
}

static int run(int sleep_mode, uint64_t requests)
{
	static struct storage s;
	static struct app a;
	struct producer prod[PRODUCERS];
	struct plx_reactor_stats st;
	pthread_t sth;
	uint64_t t0, t1;
	int rc = 0, ready;

	memset(&s, 0, sizeof(s));
	memset(&a, 0, sizeof(a));
	a.sleep_mode = sleep_mode;
	a.requests = requests;
	a.producers_left = PRODUCERS;
	if (pthread_create(&sth, NULL, storage_main, &s))
		return 1;
	while (!(ready = __atomic_load_n(&s.ready, __ATOMIC_ACQUIRE)))
		sched_yield();
	if (ready < 0) {
		pthread_join(sth, NULL);
		free(s.mem);
		return 1;
	}
	/* this thread owns the reactor: init it here */
	rc = plx_reactor_init(&a.r, NULL);
	if (rc) {
		fprintf(stderr, "plx_reactor_init: %s\n", plx_strerror(rc));
		goto stop_storage;
	}
	rc = app_connect(&a, s.port);
	if (rc)
		goto fini;
	t0 = plx_now_ns();
	for (int i = 0; i < PRODUCERS; i++) {
		prod[i] = (struct producer){.a = &a, .id = i};
		pthread_create(&prod[i].th, NULL, producer_main, &prod[i]);
	}
	rc = serve(&a);
	if (rc) {
		/* producers may be waiting on us: keep serving until they
		 * give up (their waits are bounded) */
		while (__atomic_load_n(&a.producers_left, __ATOMIC_ACQUIRE)) {
			drain_queue(&a, 16);
			plx_reactor_poll(&a.r);
		}
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(prod[i].th, NULL);
	t1 = plx_now_ns();
	plx_reactor_stats(&a.r, &st);
	printf("%s loop: %.3f s\n", sleep_mode ? "sleeping" : "busy-poll",
	       (double)(t1 - t0) / 1e9);
	printf("  loop turns %" PRIu64 ", app requests handled %" PRIu64
	       ", writes completed %" PRIu64 "\n",
	       a.turns, a.handled, a.writes_done);
	printf("  sleeps %" PRIu64 ", wake-ups %" PRIu64 " (+%" PRIu64
	       " timeouts), arm refused (work pending) %" PRIu64
	       ", doorbells %" PRIu64 "\n",
	       a.sleeps, a.wakeups, a.timeouts, a.arm_busy, st.doorbells);
	if (a.failed || a.requests_done != requests * PRODUCERS ||
	    a.writes_done != requests * PRODUCERS)
		rc = 1;
fini:
	if (plx_tcp_shutdown(&a.r) == 0) {
		uint64_t end = plx_now_ns() + WAIT_NS;

		while (plx_reactor_fini(&a.r) == PLX_EBUSY &&
		       plx_now_ns() < end)
			plx_reactor_poll(&a.r);
	}
stop_storage:
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(sth, NULL);
	/* every write completed: its record is in place (and the join
	 * orders the storage thread's memory before our reads) */
	if (!rc)
		rc = verify(&s, requests);
	free(s.mem);
	return rc;
}

int main(int argc, char **argv)
{
	const char *mode = "both";
	uint64_t requests = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			mode = argv[++i];
		} else if (!strcmp(argv[i], "--requests") && i + 1 < argc) {
			requests = strtoull(argv[++i], NULL, 0);
			if (!requests)
				goto usage;
		} else {
			goto usage;
		}
	}
	if (strcmp(mode, "busy") && strcmp(mode, "sleep") &&
	    strcmp(mode, "both"))
		goto usage;
	printf("serving loop: %d producer threads, each: request -> loop, "
	       "then its result -> storage peer (plx_ep_write_mt)\n",
	       PRODUCERS);
	if (strcmp(mode, "sleep"))
		rc |= run(0, requests ? requests : 20000);
	if (strcmp(mode, "busy"))
		rc |= run(1, requests ? requests : 2000);
	return rc;
usage:
	fprintf(stderr, "usage: %s [--mode busy|sleep|both] [--requests N]\n",
		argv[0]);
	return 2;
}
