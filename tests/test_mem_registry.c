/* SPDX-License-Identifier: MIT */
/* Region registry: register, lookup, deregister, limits and keys. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pollux/mem.h"
#include "pollux/reactor.h"

#define RD PLX_ACCESS_REMOTE_READ
#define WR PLX_ACCESS_REMOTE_WRITE

static unsigned char arena[1 << 16];

static void reactor_up(struct plx_reactor *r, uint32_t max_regions)
{
	struct plx_reactor_config cfg;

	plx_reactor_config_init(&cfg);
	if (max_regions)
		cfg.max_regions = max_regions;
	EXPECT_OK(plx_reactor_init(r, &cfg));
}

static uint64_t uaddr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static void test_lookup_in_bounds_succeeds(void)
{
	struct plx_reactor r;
	struct plx_region reg, *found;
	uint64_t base = uaddr(arena + 100), key;
	struct plx_desc d;
	uint8_t id[16];

	reactor_up(&r, 0);
	EXPECT_OK(plx_mem_register(&r, &reg, arena + 100, 1000, RD | WR));
	EXPECT_OK(plx_mem_desc(&r, &reg, &d));
	key = d.key;
	EXPECT_NE(key, 0);
	EXPECT_U64_EQ(d.addr, base);
	EXPECT_U64_EQ(d.len, 1000);
	EXPECT_EQ(d.access, RD | WR);
	EXPECT_EQ(d.hints, PLX_HINT_TCP);
	plx_reactor_node_id(&r, id, NULL);
	EXPECT_MEM_EQ(d.owner, id, sizeof(id));

	found = NULL;
	EXPECT_OK(plx_mem_lookup(&r, base, 1000, key, RD | WR, &found));
	EXPECT_PTR_EQ(found, &reg);
	EXPECT_OK(plx_mem_lookup(&r, base, 1, key, RD, NULL));
	EXPECT_OK(plx_mem_lookup(&r, base + 999, 1, key, WR, NULL));
	EXPECT_OK(plx_mem_lookup(&r, base + 500, 500, key, RD, NULL));
	/* zero-length accesses inside the region, including at its end */
	EXPECT_OK(plx_mem_lookup(&r, base, 0, key, RD, NULL));
	EXPECT_OK(plx_mem_lookup(&r, base + 1000, 0, key, RD, NULL));
	EXPECT_OK(plx_mem_lookup(&r, base + 10, 20, key, 0, NULL));

	EXPECT_OK(plx_mem_deregister(&r, &reg));
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_lookup_out_of_bounds_is_efault(void)
{
	struct plx_reactor r;
	struct plx_region reg, *found = (struct plx_region *)arena;
	uint64_t base = uaddr(arena + 4096), key;
	struct plx_desc d;

	reactor_up(&r, 0);
	EXPECT_OK(plx_mem_register(&r, &reg, arena + 4096, 4096, RD | WR));
	EXPECT_OK(plx_mem_desc(&r, &reg, &d));
	key = d.key;

	EXPECT_STATUS(plx_mem_lookup(&r, base - 1, 1, key, RD, &found),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, base - 1, 2, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, base - 1, 0, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, base + 4096, 1, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, base + 4097, 0, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, base + 4000, 97, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, base, 4097, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, 0, 4096, key, RD, NULL), PLX_EFAULT);
	/* addr + len wraps to inside the region */
	EXPECT_STATUS(plx_mem_lookup(&r, base + 8, UINT64_MAX, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, base + 8, UINT64_MAX - 7, key, RD,
				     NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, UINT64_MAX, 2, key, RD, NULL),
		      PLX_EFAULT);
	EXPECT_STATUS(plx_mem_lookup(&r, UINT64_MAX, UINT64_MAX, key, RD, NULL),
		      PLX_EFAULT);
	/* the out-parameter is written only on success */
	EXPECT_PTR_EQ(found, arena);

	EXPECT_OK(plx_mem_deregister(&r, &reg));
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_lookup_wrong_access_is_eacces(void)
{
	struct plx_reactor r;
	struct plx_region ro, wo;
	struct plx_desc dr, dw;

	reactor_up(&r, 0);
	EXPECT_OK(plx_mem_register(&r, &ro, arena, 64, RD));
	EXPECT_OK(plx_mem_register(&r, &wo, arena, 64, WR));
	EXPECT_OK(plx_mem_desc(&r, &ro, &dr));
	EXPECT_OK(plx_mem_desc(&r, &wo, &dw));
	EXPECT_NE(dr.key, dw.key);

	EXPECT_OK(plx_mem_lookup(&r, dr.addr, 64, dr.key, RD, NULL));
	EXPECT_STATUS(plx_mem_lookup(&r, dr.addr, 64, dr.key, WR, NULL),
		      PLX_EACCES);
	EXPECT_STATUS(plx_mem_lookup(&r, dr.addr, 64, dr.key, RD | WR, NULL),
		      PLX_EACCES);
	EXPECT_OK(plx_mem_lookup(&r, dw.addr, 64, dw.key, WR, NULL));
	EXPECT_STATUS(plx_mem_lookup(&r, dw.addr, 64, dw.key, RD, NULL),
		      PLX_EACCES);
	EXPECT_STATUS(plx_mem_lookup(&r, dw.addr, 64, dw.key, 0x4, NULL),
		      PLX_EACCES);

	EXPECT_OK(plx_mem_deregister(&r, &ro));
	EXPECT_OK(plx_mem_deregister(&r, &wo));
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_unknown_key_is_rejected(void)
{
	struct plx_reactor r;
	struct plx_region reg;
	struct plx_desc d;

	reactor_up(&r, 0);
	EXPECT_STATUS(plx_mem_lookup(&r, uaddr(arena), 1, 1234, RD, NULL),
		      PLX_EKEYREJECTED);
	EXPECT_OK(plx_mem_register(&r, &reg, arena, 64, RD));
	EXPECT_OK(plx_mem_desc(&r, &reg, &d));
	EXPECT_STATUS(plx_mem_lookup(&r, d.addr, 1, d.key + 1, RD, NULL),
		      PLX_EKEYREJECTED);
	EXPECT_STATUS(plx_mem_lookup(&r, d.addr, 1, d.key ^ (1ull << 63), RD,
				     NULL),
		      PLX_EKEYREJECTED);
	EXPECT_STATUS(plx_mem_lookup(&r, d.addr, 1, 0, RD, NULL),
		      PLX_EKEYREJECTED);
	EXPECT_OK(plx_mem_deregister(&r, &reg));
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_deregister_rejects_key_at_once(void)
{
	struct plx_reactor r;
	struct plx_region reg, other;
	struct plx_desc d;

	reactor_up(&r, 0);
	EXPECT_OK(plx_mem_register(&r, &reg, arena, 256, RD | WR));
	EXPECT_OK(plx_mem_desc(&r, &reg, &d));
	EXPECT_OK(plx_mem_lookup(&r, d.addr, 256, d.key, RD, NULL));
	EXPECT_OK(plx_mem_deregister(&r, &reg));
	EXPECT_STATUS(plx_mem_lookup(&r, d.addr, 256, d.key, RD, NULL),
		      PLX_EKEYREJECTED);
	EXPECT_STATUS(plx_mem_deregister(&r, &reg), PLX_ENOENT);
	EXPECT_STATUS(plx_mem_desc(&r, &reg, &d), PLX_ENOENT);

	/* a region never registered, and one with a copied live key */
	memset(&other, 0, sizeof(other));
	EXPECT_STATUS(plx_mem_deregister(&r, &other), PLX_ENOENT);
	EXPECT_OK(plx_mem_register(&r, &reg, arena, 256, RD));
	memcpy(&other, &reg, sizeof(other));
	EXPECT_STATUS(plx_mem_deregister(&r, &other), PLX_ENOENT);
	EXPECT_STATUS(plx_mem_desc(&r, &other, &d), PLX_ENOENT);
	/* registering a live region again is refused */
	EXPECT_STATUS(plx_mem_register(&r, &reg, arena, 256, RD), PLX_EBUSY);
	EXPECT_OK(plx_mem_deregister(&r, &reg));
	EXPECT_OK(plx_reactor_fini(&r));
}

/* Look @gone up (so it is the region found last), deregister and free it:
 * its key is refused at once and @stay's still found. */
static void drop_found_last(struct plx_reactor *r, struct plx_region *gone,
			    const struct plx_desc *dg, uint32_t gone_access,
			    const struct plx_desc *stay, uint32_t stay_access)
{
	EXPECT_OK(plx_mem_lookup(r, dg->addr, 256, dg->key, gone_access, NULL));
	EXPECT_OK(plx_mem_deregister(r, gone));
	free(gone);
	EXPECT_STATUS(plx_mem_lookup(r, dg->addr, 256, dg->key, gone_access,
				     NULL),
		      PLX_EKEYREJECTED);
	if (stay)
		EXPECT_OK(plx_mem_lookup(r, stay->addr, 256, stay->key,
					 stay_access, NULL));
}

/* The region found last is remembered (plx_mem_lookup() answers the same
 * key without a search): whatever was found last, a deregistered key is
 * refused at once, and the reactor never looks at a deregistered
 * region's struct again (the caller may free it at once: under the asan
 * tier a stale pointer would be a use after free). */
static void test_last_found_forgotten_on_deregister(void)
{
	struct plx_reactor r;
	struct plx_region *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	struct plx_desc da, db, da2;

	EXPECT_TRUE(a && b);
	reactor_up(&r, 0);
	EXPECT_OK(plx_mem_register(&r, a, arena, 256, RD | WR));
	EXPECT_OK(plx_mem_register(&r, b, arena + 256, 256, RD | WR));
	EXPECT_OK(plx_mem_desc(&r, a, &da));
	EXPECT_OK(plx_mem_desc(&r, b, &db));
	for (int i = 0; i < 3; i++) {
		EXPECT_OK(plx_mem_lookup(&r, da.addr, 256, da.key, RD, NULL));
		EXPECT_OK(plx_mem_lookup(&r, db.addr, 256, db.key, WR, NULL));
	}
	drop_found_last(&r, a, &da, RD, &db, WR); /* a goes, b stays */
	/* a new struct for the same memory: a new key, the old one refused
	 * even right after a lookup of the new one */
	a = malloc(sizeof(*a));
	EXPECT_TRUE(a != NULL);
	EXPECT_OK(plx_mem_register(&r, a, arena, 256, RD));
	EXPECT_OK(plx_mem_desc(&r, a, &da2));
	EXPECT_NE(da2.key, da.key);
	EXPECT_OK(plx_mem_lookup(&r, da2.addr, 256, da2.key, RD, NULL));
	EXPECT_STATUS(plx_mem_lookup(&r, da.addr, 256, da.key, RD, NULL),
		      PLX_EKEYREJECTED);
	EXPECT_STATUS(plx_mem_lookup(&r, da2.addr, 256, da2.key, WR, NULL),
		      PLX_EACCES);
	drop_found_last(&r, b, &db, WR, &da2, RD); /* b goes, a stays */
	drop_found_last(&r, a, &da2, RD, NULL, 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_register_rejects_bad_arguments(void)
{
	struct plx_reactor r;
	struct plx_region reg;
	struct plx_desc d;

	reactor_up(&r, 0);
	EXPECT_STATUS(plx_mem_register(NULL, &reg, arena, 64, RD), PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register(&r, NULL, arena, 64, RD), PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register(&r, &reg, NULL, 64, RD), PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register(&r, &reg, arena, 0, RD), PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register(&r, &reg, arena, 64, 0x4), PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register(&r, &reg, arena, SIZE_MAX, RD),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_mem_deregister(&r, NULL), PLX_EINVAL);
	EXPECT_STATUS(plx_mem_desc(&r, NULL, &d), PLX_EINVAL);
	EXPECT_STATUS(plx_mem_lookup(NULL, 0, 0, 1, 0, NULL), PLX_EINVAL);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_fini_busy_while_registered(void)
{
	struct plx_reactor r;
	struct plx_region reg;
	struct plx_reactor_stats st;

	reactor_up(&r, 0);
	EXPECT_OK(plx_mem_register(&r, &reg, arena, 64, RD));
	EXPECT_OK(plx_reactor_stats(&r, &st));
	EXPECT_U64_EQ(st.regions, 1);
	EXPECT_STATUS(plx_reactor_fini(&r), PLX_EBUSY);
	/* still usable after the refused fini */
	EXPECT_OK(plx_mem_lookup(&r, reg.plx_addr, 64, reg.plx_key, RD, NULL));
	EXPECT_OK(plx_mem_deregister(&r, &reg));
	EXPECT_OK(plx_reactor_stats(&r, &st));
	EXPECT_U64_EQ(st.regions, 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_register_full_registry_is_enospc(void)
{
	enum {
		MAX = 8
	};
	struct plx_reactor r;
	struct plx_region regs[MAX + 1];
	int i;

	reactor_up(&r, MAX);
	for (i = 0; i < MAX; i++)
		EXPECT_OK(plx_mem_register(&r, &regs[i], arena + i, 1, RD));
	EXPECT_STATUS(plx_mem_register(&r, &regs[MAX], arena, 1, RD),
		      PLX_ENOSPC);
	/* a freed slot can be reused */
	EXPECT_OK(plx_mem_deregister(&r, &regs[3]));
	EXPECT_OK(plx_mem_register(&r, &regs[MAX], arena, 1, RD));
	EXPECT_STATUS(plx_mem_register(&r, &regs[3], arena, 1, RD), PLX_ENOSPC);
	for (i = 0; i <= MAX; i++)
		if (i != 3)
			EXPECT_OK(plx_mem_deregister(&r, &regs[i]));
	EXPECT_OK(plx_reactor_fini(&r));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void test_keys_are_distinct_and_nonzero(void)
{
	enum {
		N = 4096,
		ROUNDS = 4
	};
	struct plx_reactor r;
	struct plx_region *regs = calloc(N, sizeof(*regs));
	uint64_t *keys = calloc((size_t)N * ROUNDS, sizeof(*keys));
	uint32_t i, k, n = 0;

	EXPECT_TRUE(regs && keys);
	reactor_up(&r, N);
	/* re-registration draws fresh keys too */
	for (k = 0; k < ROUNDS; k++) {
		for (i = 0; i < N; i++) {
			EXPECT_OK(plx_mem_register(&r, &regs[i], arena, 8, RD));
			EXPECT_NE(regs[i].plx_key, 0);
			keys[n++] = regs[i].plx_key;
		}
		for (i = 0; i < N; i++)
			EXPECT_OK(plx_mem_deregister(&r, &regs[i]));
	}
	qsort(keys, n, sizeof(*keys), cmp_u64);
	for (i = 1; i < n; i++)
		EXPECT_TRUE(keys[i] != keys[i - 1]);
	EXPECT_OK(plx_reactor_fini(&r));
	free(keys);
	free(regs);
}

static void shuffle(uint32_t *v, uint32_t n, uint64_t *seed)
{
	uint32_t i, j, t;

	for (i = n; i > 1; i--) {
		j = (uint32_t)(plx_test_rand(seed) % i);
		t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Regions i live iff live[i]; check every one against the registry. */
static void check_all(struct plx_reactor *r, struct plx_region *regs,
		      const uint64_t *keys, const bool *live, uint32_t n)
{
	struct plx_region *found;
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint64_t a = uaddr(arena + i);

		if (!live[i]) {
			EXPECT_STATUS(plx_mem_lookup(r, a, 1, keys[i], RD,
						     NULL),
				      PLX_EKEYREJECTED);
			continue;
		}
		found = NULL;
		EXPECT_OK(plx_mem_lookup(r, a, i + 1, keys[i], RD, &found));
		EXPECT_PTR_EQ(found, &regs[i]);
		EXPECT_STATUS(plx_mem_lookup(r, a, i + 2, keys[i], RD, NULL),
			      PLX_EFAULT);
		EXPECT_STATUS(plx_mem_lookup(r, a, 1, keys[i], WR, NULL),
			      PLX_EACCES);
	}
}

static void test_many_regions_random_order(void)
{
	enum {
		N = 1000
	};
	struct plx_reactor r;
	struct plx_region *regs = calloc(N, sizeof(*regs));
	uint64_t *keys = calloc(N, sizeof(*keys));
	uint32_t *order = calloc(N, sizeof(*order));
	bool *live = calloc(N, sizeof(*live));
	uint64_t seed = plx_test_seed("test_many_regions_random_order");
	struct plx_reactor_stats st;
	uint32_t i, j;

	EXPECT_TRUE(regs && keys && order && live);
	reactor_up(&r, N);
	for (i = 0; i < N; i++)
		order[i] = i;

	shuffle(order, N, &seed);
	for (i = 0; i < N; i++) {
		j = order[i];
		/* region j: [arena + j, + j + 1), read only */
		EXPECT_OK(plx_mem_register(&r, &regs[j], arena + j, j + 1, RD));
		keys[j] = regs[j].plx_key;
		live[j] = true;
		if (i % 97 == 0)
			check_all(&r, regs, keys, live, N);
	}
	check_all(&r, regs, keys, live, N);
	EXPECT_OK(plx_reactor_stats(&r, &st));
	EXPECT_U64_EQ(st.regions, N);

	shuffle(order, N, &seed);
	for (i = 0; i < N; i++) {
		j = order[i];
		EXPECT_OK(plx_mem_deregister(&r, &regs[j]));
		live[j] = false;
		EXPECT_STATUS(plx_mem_lookup(&r, uaddr(arena + j), 1, keys[j],
					     RD, NULL),
			      PLX_EKEYREJECTED);
		if (i % 97 == 0)
			check_all(&r, regs, keys, live, N);
	}
	check_all(&r, regs, keys, live, N);
	EXPECT_OK(plx_reactor_stats(&r, &st));
	EXPECT_U64_EQ(st.regions, 0);
	EXPECT_OK(plx_reactor_fini(&r));
	free(live);
	free(order);
	free(keys);
	free(regs);
}

/* plx_mem_register_mt() from another thread: the owner adds the region
 * in its next poll; the handle completes with the registration's status. */
struct mt_reg {
	struct plx_reactor *r;
	struct plx_region *reg;
	void *addr;
	size_t len;
	struct plx_req req;
	int submit_rc, wait_rc;
};

static void *mt_register_thread(void *arg)
{
	struct mt_reg *m = arg;

	plx_req_init(&m->req, NULL, NULL);
	int rc;

	m->submit_rc = plx_mem_register_mt(m->r, m->reg, m->addr, m->len,
					   RD | WR, &m->req);
	rc = m->submit_rc ? m->submit_rc :
			    plx_req_wait_mt(&m->req, 10000000000ull);
	__atomic_store_n(&m->wait_rc, rc, __ATOMIC_RELEASE);
	return NULL;
}

static void mt_register(struct plx_reactor *r, struct mt_reg *m)
{
	pthread_t th;
	int done;

	m->r = r;
	EXPECT_OK(pthread_create(&th, NULL, mt_register_thread, m));
	/* the owner polls until the thread has its answer */
	do {
		plx_reactor_poll(r);
		done = __atomic_load_n(&m->wait_rc, __ATOMIC_ACQUIRE) != 1;
	} while (!done);
	EXPECT_OK(pthread_join(th, NULL));
}

static void test_register_mt(void)
{
	struct plx_reactor r;
	struct plx_region regs[3], other;
	struct plx_region *found = NULL;
	struct mt_reg m = {0};
	struct plx_req req;

	memset(regs, 0, sizeof(regs));
	reactor_up(&r, 2);
	/* a region registered from another thread */
	m.reg = &regs[0];
	m.addr = arena;
	m.len = 4096;
	m.wait_rc = 1;
	mt_register(&r, &m);
	EXPECT_OK(m.submit_rc);
	EXPECT_OK(m.wait_rc);
	EXPECT_OK(m.req.status);
	EXPECT_OK(plx_mem_lookup(&r, uaddr(arena) + 100, 64, regs[0].plx_key,
				 RD, &found));
	EXPECT_PTR_EQ(found, &regs[0]);

	/* the owner's refusals come back through the request */
	m.reg = &regs[0]; /* live: PLX_EBUSY */
	m.wait_rc = 1;
	mt_register(&r, &m);
	EXPECT_OK(m.wait_rc);
	EXPECT_STATUS(m.req.status, PLX_EBUSY);
	EXPECT_OK(plx_mem_register(&r, &regs[1], arena + 4096, 4096, RD));
	m.reg = &regs[2]; /* registry full (2): PLX_ENOSPC */
	m.addr = arena + 8192;
	m.wait_rc = 1;
	mt_register(&r, &m);
	EXPECT_OK(m.wait_rc);
	EXPECT_STATUS(m.req.status, PLX_ENOSPC);
	EXPECT_EQ(regs[2].plx_key, 0);

	/* the calling thread's refusals are immediate */
	plx_req_init(&req, NULL, NULL);
	EXPECT_STATUS(plx_mem_register_mt(&r, &other, arena, 0, RD, &req),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register_mt(&r, &other, arena, 64, 0x80, &req),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register_mt(&r, &other, arena, 64, RD, NULL),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_mem_register_mt(NULL, &other, arena, 64, RD, &req),
		      PLX_EINVAL);

	EXPECT_OK(plx_mem_deregister(&r, &regs[0]));
	EXPECT_OK(plx_mem_deregister(&r, &regs[1]));
	EXPECT_OK(plx_reactor_fini(&r));
}

int main(void)
{
	test_lookup_in_bounds_succeeds();
	test_lookup_out_of_bounds_is_efault();
	test_lookup_wrong_access_is_eacces();
	test_unknown_key_is_rejected();
	test_deregister_rejects_key_at_once();
	test_last_found_forgotten_on_deregister();
	test_register_rejects_bad_arguments();
	test_fini_busy_while_registered();
	test_register_full_registry_is_enospc();
	test_keys_are_distinct_and_nonzero();
	test_many_regions_random_order();
	test_register_mt();
	return 0;
}
