/* SPDX-License-Identifier: MIT */
/*
 * plx_bench_reactor: foundation microbenchmarks.
 *
 *   idle    cost of one plx_reactor_poll() with nothing to do
 *   ring    requests/s drained with 1, 2 and 4 producer threads
 *   rtt     cross-thread round trip: a producer submits, the busy-polling
 *           reactor completes, the producer observes the completion
 *
 * The reactor thread runs on CPU 0, producers on the other CPUs (with two
 * cores, all producers share CPU 1). Usage:
 *   plx_bench_reactor [--quick] [--json | --md] [--only idle|ring|rtt]
 *
 * --md prints a Markdown table for docs/benchmarks.md.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pollux/pollux.h"

static int g_json, g_md, g_quick;

static void pin(int cpu)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	CPU_SET(n > 1 ? cpu % n : 0, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int producer_cpu(int i)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 1 ? 1 + i % (int)(n - 1) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- idle poll ---------------------------------------------------------- */

static double bench_idle(void)
{
	struct plx_reactor r;
	uint64_t iters = g_quick ? 2000000 : 20000000, best = UINT64_MAX;

	pin(0);
	if (plx_reactor_init(&r, NULL))
		abort();
	for (int rep = 0; rep < 5; rep++) {
		uint64_t t0 = plx_now_ns();

		for (uint64_t i = 0; i < iters; i++)
			plx_reactor_poll(&r);
		uint64_t dt = plx_now_ns() - t0;

		if (dt < best)
			best = dt;
	}
	plx_reactor_fini(&r);
	return (double)best / (double)iters;
}

/* ---- ring throughput ---------------------------------------------------- */

#define WINDOW 8192

/*
 * Each producer cycles through WINDOW handle-mode requests; it reuses one
 * only after plx_req_test_mt() says it completed, so the producer touches
 * no line but its own requests and the ring.
 */
struct rprod {
	struct plx_reactor *r;
	uint64_t n;
	uint64_t full;
	int cpu;
	int *go;
	struct plx_req reqs[WINDOW];
} __attribute__((aligned(64)));

static int fn_nop(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	return 0;
}

static void *ring_producer(void *arg)
{
	struct rprod *p = arg;

	pin(p->cpu);
	for (int i = 0; i < WINDOW; i++)
		plx_req_init(&p->reqs[i], NULL, p);
	while (!__atomic_load_n(p->go, __ATOMIC_ACQUIRE))
		;
	for (uint64_t i = 0; i < p->n; i++) {
		struct plx_req *req = &p->reqs[i % WINDOW];

		while (i >= WINDOW && !plx_req_test_mt(req))
			sched_yield();
		while (plx_submit_call_mt(p->r, req, fn_nop) == PLX_EAGAIN)
			p->full++;
	}
	return NULL;
}

static double bench_ring(int nprod, uint64_t *full_out)
{
	static struct rprod prods[8];
	struct plx_reactor r;
	struct plx_reactor_config cfg;
	pthread_t th[8];
	uint64_t per = (g_quick ? 2000000 : 10000000) / (uint64_t)nprod;
	uint64_t total = per * (uint64_t)nprod, t0, dt, drained = 0;
	int go = 0;

	pin(0);
	plx_reactor_config_init(&cfg);
	cfg.ring_capacity = 4096;
	cfg.max_batch = 256;
	if (plx_reactor_init(&r, &cfg))
		abort();
	for (int i = 0; i < nprod; i++) {
		memset(&prods[i], 0, sizeof(prods[i]));
		prods[i].r = &r;
		prods[i].n = per;
		prods[i].cpu = producer_cpu(i);
		prods[i].go = &go;
		pthread_create(&th[i], NULL, ring_producer, &prods[i]);
	}
	usleep(10000);
	t0 = plx_now_ns();
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	while (drained < total) {
		int n = plx_reactor_poll(&r);

		if (n > 0)
			drained += (uint64_t)n;
	}
	dt = plx_now_ns() - t0;
	*full_out = 0;
	for (int i = 0; i < nprod; i++) {
		pthread_join(th[i], NULL);
		*full_out += prods[i].full;
	}
	while (plx_reactor_poll(&r))
		;
	if (plx_reactor_fini(&r))
		abort();
	return (double)total / ((double)dt / 1e9);
}

/* ---- cross-thread round trip -------------------------------------------- */

struct rtt {
	struct plx_reactor r;
	int stop;
	int ready;
	uint64_t n;
	uint64_t *samples;
};

static int fn_echo(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	return 0;
}

static void *rtt_producer(void *arg)
{
	struct rtt *c = arg;
	struct plx_req req;

	pin(producer_cpu(0));
	while (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE))
		;
	for (uint64_t i = 0; i < c->n; i++) {
		plx_req_init(&req, NULL, NULL);
		uint64_t t0 = plx_now_ns();

		while (plx_submit_call_mt(&c->r, &req, fn_echo))
			;
		if (plx_req_wait_mt(&req, 1000000000ull))
			abort();
		c->samples[i] = plx_now_ns() - t0;
	}
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void bench_rtt(double *med, double *p99, double *p999)
{
	static struct rtt c;
	pthread_t th;

	c.n = g_quick ? 20000 : 200000;
	c.samples = calloc(c.n, sizeof(uint64_t));
	c.stop = 0;
	pin(0);
	if (!c.samples || plx_reactor_init(&c.r, NULL))
		abort();
	pthread_create(&th, NULL, rtt_producer, &c);
	__atomic_store_n(&c.ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&c.stop, __ATOMIC_ACQUIRE))
		plx_reactor_poll(&c.r);
	pthread_join(th, NULL);
	if (plx_reactor_fini(&c.r))
		abort();
	/* drop the first 1% as warm-up */
	uint64_t skip = c.n / 100, m = c.n - skip;
	uint64_t *s = c.samples + skip;

	qsort(s, m, sizeof(*s), cmp_u64);
	*med = (double)s[m / 2];
	*p99 = (double)s[m * 99 / 100];
	*p999 = (double)s[m * 999 / 1000];
	free(c.samples);
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	double idle = 0, ring[3] = {0}, med = 0, p99 = 0, p999 = 0;
	uint64_t full[3] = {0};
	static const int nprods[3] = {1, 2, 4};

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			g_json = 1;
		else if (!strcmp(argv[i], "--md"))
			g_md = 1;
		else if (!strcmp(argv[i], "--quick"))
			g_quick = 1;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr,
				"usage: %s [--quick] [--json | --md] [--only "
				"idle|ring|rtt]\n",
				argv[0]);
			return 2;
		}
	}
	if (!only || !strcmp(only, "idle"))
		idle = bench_idle();
	if (!only || !strcmp(only, "ring"))
		for (int i = 0; i < 3; i++)
			ring[i] = bench_ring(nprods[i], &full[i]);
	if (!only || !strcmp(only, "rtt"))
		bench_rtt(&med, &p99, &p999);

	if (g_json) {
		printf("{\"idle_poll_ns\": %.2f, \"ring_mreq_s\": {\"1\": %.2f, "
		       "\"2\": %.2f, \"4\": %.2f}, \"rtt_ns\": {\"median\": "
		       "%.0f, \"p99\": %.0f, \"p999\": %.0f}, \"cpus\": %ld}\n",
		       idle, ring[0] / 1e6, ring[1] / 1e6, ring[2] / 1e6, med,
		       p99, p999, sysconf(_SC_NPROCESSORS_ONLN));
		return 0;
	}
	if (g_md) {
		printf("| benchmark | result | target | met |\n|---|---:|---|---|\n");
		if (idle > 0)
			printf("| idle `plx_reactor_poll()` | %.1f ns | <= 50 ns | "
			       "%s |\n",
			       idle, idle <= 50 ? "yes" : "**no**");
		for (int i = 0; i < 3; i++)
			if (ring[i] > 0)
				printf("| ring drain, %d producer%s | %.2f M req/s | "
				       "%s | %s |\n",
				       nprods[i], nprods[i] > 1 ? "s" : "",
				       ring[i] / 1e6, i == 0 ? ">= 20 M/s" : "",
				       i	       ? "" :
				       ring[0] >= 20e6 ? "yes" :
							 "**no**");
		if (med > 0)
			printf("| cross-thread round trip, median | %.0f ns | "
			       "<= 2000 ns | %s |\n| cross-thread round trip, "
			       "p99 | %.0f ns | | |\n| cross-thread round trip, "
			       "p99.9 | %.0f ns | | |\n",
			       med, med <= 2000 ? "yes" : "**no**", p99, p999);
		return 0;
	}
	printf("pollux reactor microbenchmarks (%ld CPUs, reactor on CPU 0)\n",
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-44s %12s %10s\n", "benchmark", "result", "target");
	if (idle > 0)
		printf("%-44s %9.1f ns %10s\n", "idle plx_reactor_poll()", idle,
		       "<= 50 ns");
	for (int i = 0; i < 3; i++) {
		char label[64];

		if (ring[i] <= 0)
			continue;
		snprintf(label, sizeof(label), "ring drain, %d producer%s",
			 nprods[i], nprods[i] > 1 ? "s" : "");
		printf("%-44s %8.2f M/s %10s   (%llu full-ring retries)\n",
		       label, ring[i] / 1e6, i == 0 ? ">= 20 M/s" : "",
		       (unsigned long long)full[i]);
	}
	if (med > 0) {
		printf("%-44s %9.0f ns %10s\n",
		       "cross-thread round trip median", med, "<= 2000 ns");
		printf("%-44s %9.0f ns\n", "cross-thread round trip p99", p99);
		printf("%-44s %9.0f ns\n", "cross-thread round trip p99.9",
		       p999);
	}
	return 0;
}
