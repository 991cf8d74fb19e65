/* SPDX-License-Identifier: MIT */
/*
 * Region registry and region descriptors.
 *
 * The registry is an array of (key, region) entries sorted by key, sized
 * once at reactor init (cfg.max_regions) so registering never allocates.
 * Lookup is a binary search, O(log n); register and deregister shift the
 * tail, O(n), which is fine on the setup path they belong to.
 *
 * Keys are 64 random bits from getrandom(2): a peer that has not been
 * given a descriptor cannot guess one. Key 0 is never issued, so a
 * region's plx_key is 0 exactly when it is not registered (after
 * deregister) - but a region counts as registered only if the registry
 * entry for its key points back at it, which also rejects uninitialised
 * structs and regions of another reactor.
 *
 * Descriptor wire format: see docs/wire-protocol.md ("Region descriptor"). Encoded byte by
 * byte, so it is the same on every host.
 */
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "reactor/hot.h"
#include "reactor/internal.h"
#include "reactor/req.h"
#include "transport/transport.h"

/* Attempts at drawing a fresh key before blaming the random source. */
#define PLX__KEY_TRIES 8

#define PLX__HINT_ALL (PLX_HINT_TCP | PLX_HINT_RDMA | PLX_HINT_CUDA)

int plx__random(void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t got;

	while (len > 0) {
		got = getrandom(p, len, 0);
		if (got < 0 && errno == EINTR)
			continue;
		/* 0 cannot happen for len > 0; treat it as failure, not a spin */
		if (got <= 0)
			return PLX_EIO;
		p += got;
		len -= (size_t)got;
	}
	return 0;
}

int plx__registry_init(struct plx__reactor *x)
{
	uint32_t cap = x->cfg.max_regions;
	size_t size;

	if (cap == 0)
		return PLX_EINVAL;
	if (__builtin_mul_overflow((size_t)cap, sizeof(*x->regs.v), &size))
		return PLX_ENOMEM;
	x->regs.v = plx__alloc(x, size);
	if (!x->regs.v)
		return PLX_ENOMEM;
	x->regs.n = 0;
	x->regs.cap = cap;
	x->regs.last = NULL;
	x->st.regions = 0;
	return 0;
}

void plx__registry_fini(struct plx__reactor *x)
{
	/* The reactor refuses fini while regions are live (PLX_EBUSY). */
	plx__free(x, x->regs.v);
	x->regs.v = NULL;
	x->regs.n = 0;
	x->regs.cap = 0;
	x->regs.last = NULL;
}

/* Index of the first entry with key >= @key (n if none). */
static uint32_t registry_lower_bound(const struct plx__registry *g,
				     uint64_t key)
{
	uint32_t lo = 0, hi = g->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (g->v[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The region registered under @key, or NULL. */
static struct plx_region *registry_find(const struct plx__registry *g,
					uint64_t key)
{
	uint32_t i;

	if (g->last && g->last->plx_key == key)
		return g->last;
	i = registry_lower_bound(g, key);
	if (i < g->n && g->v[i].key == key)
		return g->v[i].reg;
	return NULL;
}

static bool region_is_live(const struct plx__reactor *x,
			   const struct plx_region *reg)
{
	return reg->plx_key != 0 &&
	       registry_find(&x->regs, reg->plx_key) == reg;
}

/* @reg is in the registry, found by its address: unlike
 * region_is_live(), this reads none of its fields, which are normally
 * uninitialised when it is registered (valgrind reports the read). */
static bool registry_holds(const struct plx__registry *g,
			   const struct plx_region *reg)
{
	for (uint32_t i = 0; i < g->n; i++)
		if (g->v[i].reg == reg)
			return true;
	return false;
}

/* Draw a nonzero key that no live registration uses. */
static int registry_new_key(const struct plx__registry *g, uint64_t *key_out)
{
	uint64_t key;
	int i, ret;

	for (i = 0; i < PLX__KEY_TRIES; i++) {
		ret = plx__random(&key, sizeof(key));
		if (ret)
			return ret;
		if (key != 0 && !registry_find(g, key)) {
			*key_out = key;
			return 0;
		}
	}
	/* Repeated zero or duplicate keys: the random source is broken. */
	return PLX_EIO;
}

/* region_del() of the first @n transports for @reg. */
static void regions_del(struct plx_reactor *r, struct plx_region *reg,
			uint32_t n)
{
	struct plx__reactor *x = plx__r(r);

	for (uint32_t k = 0; k < n; k++) {
		const struct plx__transport_ops *ops = x->transports[k].ops;

		if (ops->region_del)
			ops->region_del(r, x->transports[k].ctx, reg);
	}
}

/* Take live @reg out of the sorted registry (and out of its memory of
 * the region found last). */
static void registry_remove(struct plx__reactor *x, struct plx_region *reg)
{
	struct plx__registry *g = &x->regs;
	uint32_t i = registry_lower_bound(g, reg->plx_key);

	memmove(&g->v[i], &g->v[i + 1],
		(size_t)(g->n - i - 1) * sizeof(g->v[0]));
	g->n--;
	x->st.regions--;
	if (g->last == reg)
		g->last = NULL;
}

/* Argument checks shared by both registration paths. */
static int register_args(struct plx_reactor *r, struct plx_region *reg,
			 void *addr, size_t len, uint32_t access)
{
	uint64_t a = (uint64_t)(uintptr_t)addr;

	if (!r || !reg || !addr || len == 0 || (uint64_t)len > UINT64_MAX - a ||
	    (access & ~PLX_ACCESS_ALL))
		return PLX_EINVAL;
	return 0;
}

/* The transport that pins ahead for plx_mem_register_mt(), or -1. */
static int pin_transport(const struct plx__reactor *x)
{
	for (uint32_t k = 0; k < x->ntransports; k++)
		if (x->transports[k].ops->region_pin)
			return (int)k;
	return -1;
}

/*
 * Owner thread: add @reg to the registry and to every transport. @pinned:
 * the state plx_mem_register_mt() prepared (or NULL); it is adopted by
 * its transport's region_add(), or freed here on a failure before that.
 */
static int register_owner(struct plx_reactor *r, struct plx_region *reg,
			  uint64_t a, uint64_t len, uint32_t access,
			  void *pinned)
{
	struct plx__reactor *x = plx__r(r);
	struct plx__registry *g = &x->regs;
	int pk = pin_transport(x), ret;
	uint64_t key;
	uint32_t i;

	/*
	 * Re-registering a live region would leave its old key in the
	 * registry, still pointing at it: refuse. (O(n), like the insert.)
	 */
	if (registry_holds(g, reg))
		ret = PLX_EBUSY;
	else if (g->n >= g->cap)
		ret = PLX_ENOSPC;
	else
		ret = registry_new_key(g, &key);
	if (ret) {
		if (pinned && pk >= 0)
			x->transports[pk].ops->region_unpin(
				x->transports[pk].ctx, pinned);
		return ret;
	}

	reg->plx_addr = a;
	reg->plx_len = len;
	reg->plx_key = key;
	reg->plx_access = access;
	reg->plx_hints = PLX_HINT_TCP;
	reg->plx_rkey = 0;
	reg->plx_flags = 0;
	memset(reg->plx_transport, 0, sizeof(reg->plx_transport));
	reg->plx_transport[PLX__TSLOT_RDMA] = pinned;
	reg->plx_name[0] = 0;

	i = registry_lower_bound(g, key);
	memmove(&g->v[i + 1], &g->v[i], (size_t)(g->n - i) * sizeof(g->v[0]));
	g->v[i].key = key;
	g->v[i].reg = reg;
	g->n++;
	x->st.regions++;
	/* what kind of memory it is (CUDA device memory?), then the
	 * per-transport state (an RDMA MR); a refusal undoes it all */
	for (uint32_t k = 0; k < x->ntransports; k++)
		if (x->transports[k].ops->region_classify)
			x->transports[k].ops->region_classify(
				r, x->transports[k].ctx, reg);
	for (uint32_t k = 0; k < x->ntransports; k++) {
		const struct plx__transport_ops *ops = x->transports[k].ops;

		if (!ops->region_add)
			continue;
		ret = ops->region_add(r, x->transports[k].ctx, reg);
		if (ret) {
			regions_del(r, reg, k);
			registry_remove(x, reg);
			reg->plx_key = 0;
			return ret;
		}
	}
	return 0;
}

int plx_mem_register(struct plx_reactor *r, struct plx_region *reg, void *addr,
		     size_t len, uint32_t access)
{
	int ret = register_args(r, reg, addr, len, access);

	if (ret)
		return ret;
	PLX__ASSERT_OWNER(plx__r(r));
	return register_owner(r, reg, (uint64_t)(uintptr_t)addr, len, access,
			      NULL);
}

/* The owner's half of plx_mem_register_mt(): plx_arg[] holds the call. */
static int register_mt_fn(struct plx_reactor *r, struct plx_req *req)
{
	return register_owner(r,
			      (struct plx_region *)(uintptr_t)req->plx_arg[0],
			      req->plx_arg[1], req->plx_arg[2],
			      (uint32_t)req->plx_arg[3],
			      (void *)(uintptr_t)req->plx_arg[4]);
}

int plx_mem_register_mt(struct plx_reactor *r, struct plx_region *reg,
			void *addr, size_t len, uint32_t access,
			struct plx_req *req)
{
	struct plx__reactor *x;
	void *pinned = NULL;
	int pk, ret = register_args(r, reg, addr, len, access);

	if (ret || !req)
		return PLX_EINVAL;
	/* refuse an in-flight request before touching its arguments */
	if ((plx__load_acquire(&req->plx_state) & PLX__REQ_STATE_MASK) ==
	    PLX__REQ_QUEUED)
		return PLX_EBUSY;
	x = plx__r(r);
	/* the expensive part, here: pinning for the RDMA transport */
	pk = pin_transport(x);
	if (pk >= 0) {
		ret = x->transports[pk].ops->region_pin(
			x->transports[pk].ctx, (uint64_t)(uintptr_t)addr,
			(uint64_t)len, access, &pinned);
		if (ret)
			return ret;
	}
	req->plx_arg[0] = (uint64_t)(uintptr_t)reg;
	req->plx_arg[1] = (uint64_t)(uintptr_t)addr;
	req->plx_arg[2] = (uint64_t)len;
	req->plx_arg[3] = access;
	req->plx_arg[4] = (uint64_t)(uintptr_t)pinned;
	ret = plx_submit_call_mt(r, req, register_mt_fn);
	if (ret && pinned)
		x->transports[pk].ops->region_unpin(x->transports[pk].ctx,
						    pinned);
	return ret;
}

int plx_mem_deregister(struct plx_reactor *r, struct plx_region *reg)
{
	struct plx__reactor *x;
	struct plx__registry *g;
	uint32_t i;

	if (!r || !reg)
		return PLX_EINVAL;
	x = plx__r(r);
	PLX__ASSERT_OWNER(x);
	g = &x->regs;
	if (reg->plx_key == 0)
		return PLX_ENOENT;
	i = registry_lower_bound(g, reg->plx_key);
	if (i >= g->n || g->v[i].key != reg->plx_key || g->v[i].reg != reg)
		return PLX_ENOENT;
	for (uint32_t k = 0; k < x->ntransports; k++) {
		const struct plx__transport_ops *ops = x->transports[k].ops;
		int rc =
			ops->region_hold ?
				ops->region_hold(r, x->transports[k].ctx, reg) :
				0;

		if (rc)
			return rc;
	}

	registry_remove(x, reg);
	/* no transport may touch the memory once this returns */
	for (uint32_t k = 0; k < x->ntransports; k++) {
		const struct plx__transport_ops *ops = x->transports[k].ops;

		if (ops->region_gone)
			ops->region_gone(r, x->transports[k].ctx, reg->plx_addr,
					 reg->plx_len);
	}
	regions_del(r, reg, x->ntransports);
	/* Key 0 is never issued: the struct now reads as unregistered. */
	reg->plx_key = 0;
	reg->plx_name[0] = 0;
	return 0;
}

int plx_mem_desc(struct plx_reactor *r, const struct plx_region *reg,
		 struct plx_desc *out)
{
	struct plx__reactor *x;

	if (!r || !reg || !out)
		return PLX_EINVAL;
	x = plx__r(r);
	PLX__ASSERT_OWNER(x);
	if (!region_is_live(x, reg))
		return PLX_ENOENT;

	memset(out, 0, sizeof(*out));
	out->addr = reg->plx_addr;
	out->len = reg->plx_len;
	out->key = reg->plx_key;
	memcpy(out->owner, x->cfg.node_id, sizeof(out->owner));
	out->access = reg->plx_access;
	out->hints = reg->plx_hints;
	out->rkey = reg->plx_rkey;
	return 0;
}

PLX__HOT int plx_mem_lookup(struct plx_reactor *r, uint64_t addr, uint64_t len,
			    uint64_t key, uint32_t access,
			    struct plx_region **reg_out)
{
	struct plx__reactor *x;
	struct plx_region *reg;

	if (!r)
		return PLX_EINVAL;
	x = plx__r(r);
	PLX__ASSERT_OWNER(x);
	reg = key ? registry_find(&x->regs, key) : NULL;
	if (!reg)
		return PLX_EKEYREJECTED;
	x->regs.last = reg;
	/*
	 * [addr, addr + len) within [base, base + reg_len), written so that
	 * nothing can overflow; a wrapping addr + len fails the last test.
	 */
	if (addr < reg->plx_addr || len > reg->plx_len ||
	    addr - reg->plx_addr > reg->plx_len - len)
		return PLX_EFAULT;
	if (access & ~reg->plx_access)
		return PLX_EACCES;
	if (reg_out)
		*reg_out = reg;
	return 0;
}

/* ----------------------------------------------------------------------
 * Descriptor encoding. Offsets: docs/wire-protocol.md ("Region descriptor").
 */

#define PLX__DESC_MAGIC 0x4450u /* bytes 'P', 'D' */
#define PLX__DESC_VERSION 1u
#define PLX__DESC_F_RKEY 0x1u

#define DESC_OFF_MAGIC 0
#define DESC_OFF_VERSION 2
#define DESC_OFF_FLAGS 3
#define DESC_OFF_LENGTH 4
#define DESC_OFF_ACCESS 6
#define DESC_OFF_ADDR 8
#define DESC_OFF_LEN 16
#define DESC_OFF_KEY 24
#define DESC_OFF_OWNER 32
#define DESC_OFF_HINTS 48
#define DESC_OFF_RKEY 52
#define DESC_OFF_RESERVED 56

_Static_assert(DESC_OFF_RESERVED + 8 == PLX_DESC_BYTES, "descriptor layout");

static void put_le(unsigned char *p, uint64_t v, unsigned int bytes)
{
	unsigned int i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, unsigned int bytes)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Field checks shared by serialize and parse. */
static bool desc_fields_valid(const struct plx_desc *d)
{
	if (d->access & ~PLX_ACCESS_ALL)
		return false;
	if (d->hints & ~PLX__HINT_ALL)
		return false;
	if (d->len == 0 || d->len > UINT64_MAX - d->addr)
		return false;
	return true;
}

int plx_desc_serialize(const struct plx_desc *d, void *buf, size_t cap)
{
	unsigned char *p = buf;

	if (!d || !buf)
		return PLX_EINVAL;
	if (cap < PLX_DESC_BYTES)
		return PLX_ENOSPC;
	/* Never emit bytes that plx_desc_parse() would reject. */
	if (!desc_fields_valid(d))
		return PLX_EINVAL;

	memset(p, 0, PLX_DESC_BYTES);
	put_le(p + DESC_OFF_MAGIC, PLX__DESC_MAGIC, 2);
	p[DESC_OFF_VERSION] = PLX__DESC_VERSION;
	p[DESC_OFF_FLAGS] = (d->hints & PLX_HINT_RDMA) ? PLX__DESC_F_RKEY : 0;
	put_le(p + DESC_OFF_LENGTH, PLX_DESC_BYTES, 2);
	put_le(p + DESC_OFF_ACCESS, d->access, 2);
	put_le(p + DESC_OFF_ADDR, d->addr, 8);
	put_le(p + DESC_OFF_LEN, d->len, 8);
	put_le(p + DESC_OFF_KEY, d->key, 8);
	memcpy(p + DESC_OFF_OWNER, d->owner, sizeof(d->owner));
	put_le(p + DESC_OFF_HINTS, d->hints, 4);
	put_le(p + DESC_OFF_RKEY, d->rkey, 4);
	/* reserved: already zero */
	return PLX_DESC_BYTES;
}

int plx_desc_parse(struct plx_desc *out, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	struct plx_desc d;
	unsigned int flags;

	if (!out || !buf)
		return PLX_EINVAL;
	if (len < PLX_DESC_BYTES)
		return PLX_EMSGSIZE;
	if (get_le(p + DESC_OFF_MAGIC, 2) != PLX__DESC_MAGIC)
		return PLX_EBADMSG;
	if (p[DESC_OFF_VERSION] != PLX__DESC_VERSION)
		return PLX_EPROTONOSUPPORT;
	if (get_le(p + DESC_OFF_LENGTH, 2) != PLX_DESC_BYTES)
		return PLX_EBADMSG;
	if (get_le(p + DESC_OFF_RESERVED, 8) != 0)
		return PLX_EBADMSG;
	/* Access is 16 bits on the wire; the whole field must be known bits. */
	if (get_le(p + DESC_OFF_ACCESS, 2) & ~(uint64_t)PLX_ACCESS_ALL)
		return PLX_EBADMSG;

	memset(&d, 0, sizeof(d));
	d.access = (uint32_t)get_le(p + DESC_OFF_ACCESS, 2);
	d.addr = get_le(p + DESC_OFF_ADDR, 8);
	d.len = get_le(p + DESC_OFF_LEN, 8);
	d.key = get_le(p + DESC_OFF_KEY, 8);
	memcpy(d.owner, p + DESC_OFF_OWNER, sizeof(d.owner));
	d.hints = (uint32_t)get_le(p + DESC_OFF_HINTS, 4);
	d.rkey = (uint32_t)get_le(p + DESC_OFF_RKEY, 4);
	if (!desc_fields_valid(&d))
		return PLX_EBADMSG;

	/* The flags byte restates the RDMA hint; anything else is corrupt. */
	flags = p[DESC_OFF_FLAGS];
	if (flags != ((d.hints & PLX_HINT_RDMA) ? PLX__DESC_F_RKEY : 0u))
		return PLX_EBADMSG;

	*out = d;
	return PLX_DESC_BYTES;
}

PLX_API struct plx_region *plx_mem_find(struct plx_reactor *r, const char *name)
{
	struct plx__reactor *x;

	if (!r || !name || !name[0])
		return NULL;
	x = plx__r(r);
	PLX__ASSERT_OWNER(x);
	for (uint32_t i = 0; i < x->regs.n; i++) {
		struct plx_region *reg = x->regs.v[i].reg;

		if (!strncmp(reg->plx_name, name, sizeof(reg->plx_name)))
			return reg;
	}
	return NULL;
}

PLX_API int plx_mem_name(struct plx_reactor *r, struct plx_region *reg,
			 const char *name)
{
	struct plx__reactor *x;
	size_t len;

	if (!r || !reg || !name)
		return PLX_EINVAL;
	x = plx__r(r);
	PLX__ASSERT_OWNER(x);
	len = strnlen(name, PLX_NAME_MAX + 1);
	if (len == 0 || len > PLX_NAME_MAX)
		return PLX_EINVAL;
	if (!region_is_live(x, reg))
		return PLX_ENOENT;
	if (plx_mem_find(r, name))
		return reg == plx_mem_find(r, name) ? 0 : PLX_EEXIST;
	memcpy(reg->plx_name, name, len + 1);
	return 0;
}
