/* SPDX-License-Identifier: MIT */
/*
 * ring_demo: producer threads hand work to a reactor thread through the
 * lock-free request ring and wait for each result on a completion handle.
 * The reactor thread runs the loop twice: busy-polling, then event-driven
 * (sleeping on the reactor fd between requests). Prints the round-trip
 * latency table of both. Until the TCP transport lands this is the demo
 * `./build.sh run` shows.
 *
 *   ring_demo [requests-per-producer]   (default 50000)
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pollux/pollux.h"

#define PRODUCERS 2

struct job {
	struct plx_req req;
	uint64_t input;
	uint64_t output; /* written on the reactor thread */
};

struct demo {
	struct plx_reactor r;
	int busy_poll;
	int ready;
	int stop;
	uint64_t n;
	uint64_t *lat[PRODUCERS];
};

/* Runs on the reactor thread: the "work" the producers hand over. */
static int compute(struct plx_reactor *r, struct plx_req *req)
{
	struct job *j = (struct job *)req;
	uint64_t x = j->input;

	(void)r;
	for (int i = 0; i < 8; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	j->output = x;
	return 0;
}

struct prod_arg {
	struct demo *d;
	int id;
};

static void *producer(void *arg)
{
	struct prod_arg *a = arg;
	struct demo *d = a->d;
	struct job j;

	while (!__atomic_load_n(&d->ready, __ATOMIC_ACQUIRE))
		;
	for (uint64_t i = 0; i < d->n; i++) {
		uint64_t t0 = plx_now_ns();
		int rc;

		plx_req_init(&j.req, NULL, NULL);
		j.input = i;
		while ((rc = plx_submit_call_mt(&d->r, &j.req, compute)) ==
		       PLX_EAGAIN)
			;
		if (rc || plx_req_wait_mt(&j.req, 5000000000ull)) {
			fprintf(stderr, "request failed: %s\n",
				plx_strerror(rc));
			exit(1);
		}
		d->lat[a->id][i] = plx_now_ns() - t0;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void run(struct demo *d, const char *label)
{
	struct prod_arg args[PRODUCERS];
	pthread_t th[PRODUCERS];
	struct plx_reactor_stats st;
	uint64_t total = d->n * PRODUCERS, *all;
	int rc = plx_reactor_init(&d->r, NULL);

	if (rc) {
		fprintf(stderr, "plx_reactor_init: %s\n", plx_strerror(rc));
		exit(1);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		args[i] = (struct prod_arg){d, i};
		pthread_create(&th[i], NULL, producer, &args[i]);
	}
	__atomic_store_n(&d->ready, 1, __ATOMIC_RELEASE);
	/* the application's serving loop: the reactor thread is this one */
	uint64_t handled = 0;

	while (handled < total) {
		int n = d->busy_poll ? plx_reactor_poll(&d->r) :
				       plx_reactor_wait(&d->r, 100);
		if (n > 0)
			handled += (uint64_t)n;
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	plx_reactor_stats(&d->r, &st);
	if ((rc = plx_reactor_fini(&d->r))) {
		fprintf(stderr, "plx_reactor_fini: %s\n", plx_strerror(rc));
		exit(1);
	}
	all = malloc(total * sizeof(*all));
	if (!all)
		exit(1);
	for (int i = 0; i < PRODUCERS; i++)
		memcpy(all + (uint64_t)i * d->n, d->lat[i],
		       d->n * sizeof(*all));
	qsort(all, total, sizeof(*all), cmp);
	printf("%-22s %10" PRIu64 " %9.2f %9.2f %9.2f %9.2f %10" PRIu64 "\n",
	       label, total, all[total / 2] / 1e3, all[total * 9 / 10] / 1e3,
	       all[total * 99 / 100] / 1e3, all[total - 1] / 1e3, st.arms);
	free(all);
	d->ready = 0;
}

int main(int argc, char **argv)
{
	static struct demo d;

	d.n = argc > 1 ? strtoull(argv[1], NULL, 0) : 50000;
	if (!d.n) {
		fprintf(stderr, "usage: %s [requests-per-producer]\n", argv[0]);
		return 2;
	}
	for (int i = 0; i < PRODUCERS; i++)
		d.lat[i] = malloc(d.n * sizeof(uint64_t));
	printf("pollux ring demo: %d producer threads -> 1 reactor thread, "
	       "round trip per request (us)\n",
	       PRODUCERS);
	printf("%-22s %10s %9s %9s %9s %9s %10s\n", "reactor loop", "requests",
	       "median", "p90", "p99", "max", "sleeps");
	d.busy_poll = 1;
	run(&d, "busy-poll");
	d.busy_poll = 0;
	run(&d, "event-driven (wait)");
	for (int i = 0; i < PRODUCERS; i++)
		free(d.lat[i]);
	return 0;
}
