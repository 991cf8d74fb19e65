/* SPDX-License-Identifier: MIT */
/*
 * pollux memory: caller-managed buffer pools, the region registry, and
 * region descriptors.
 *
 * Pools: the caller asks how much memory a pool needs (plx_pool_memsize),
 * hands that memory in (plx_pool_init), and gets/puts fixed-size buffers in
 * O(1). pollux never allocates for a pool and never frees its memory.
 *
 * Regions: plx_mem_register() records a caller region with access rights
 * and gives it an unguessable 64-bit key (from the kernel's CSPRNG). A
 * descriptor (address, length, key, owner node id, access, transport hints)
 * names the region to a peer; it serialises to a compact versioned byte
 * string. A target checks every remote access with plx_mem_lookup():
 * (address, length, key, access) must fall inside one live registration.
 * Deregistration makes the key fail at once.
 */
#ifndef POLLUX_MEM_H
#define POLLUX_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "pollux/export.h"
#include "pollux/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct plx_reactor;
struct plx_req;

/* ----------------------------------------------------------------------
 * Pools
 */

/*
 * struct plx_pool - caller-owned pool handle; private fields. The pool's
 * buffers and its free-index stack live in the memory given to
 * plx_pool_init(). Not thread-safe: use a pool from one thread at a time
 * (normally the reactor's owner thread).
 */
struct plx_pool {
	unsigned char *plx_base; /* first buffer */
	uint32_t *plx_free;	 /* stack of free buffer indices */
	size_t plx_buf_size;	 /* stride between buffers */
	uint32_t plx_count;	 /* number of buffers */
	uint32_t plx_top;	 /* free indices on the stack */
	size_t plx_mem_len;
	void *plx_mem;
};

/*
 * plx_pool_memsize() - bytes of caller memory a pool of @count buffers of
 * @buf_size bytes needs. @buf_size is rounded up to a multiple of 64 so
 * every buffer starts on a cache line (if @mem is 64-byte aligned).
 * Return: the size; 0 if @buf_size or @count is 0 or the size overflows.
 * Thread context: any thread.
 */
PLX_API size_t plx_pool_memsize(size_t buf_size, uint32_t count);

/*
 * plx_pool_init() - format @len bytes at @mem as a pool of @count buffers
 * of @buf_size bytes (all free). Buffers occupy the start of @mem, so
 * [@mem, @mem + plx_pool_memsize()) can be registered as one region.
 * Return: 0; PLX_EINVAL (NULL, zero sizes, @mem not 8-byte aligned);
 * PLX_ENOSPC (@len < plx_pool_memsize(@buf_size, @count), or that size
 * overflows).
 * Thread context: any thread.
 */
PLX_API int plx_pool_init(struct plx_pool *pool, void *mem, size_t len,
			  size_t buf_size, uint32_t count);

/*
 * plx_pool_bufs_memsize() - bytes the buffers alone of such a pool take
 * (@count buffers of @buf_size rounded up to 64), for plx_pool_init_split().
 * Return: the size; 0 if @buf_size or @count is 0 or the size overflows.
 * Thread context: any thread.
 */
PLX_API size_t plx_pool_bufs_memsize(size_t buf_size, uint32_t count);

/*
 * plx_pool_init_split() - format a pool of @count buffers of @buf_size
 * bytes at @bufs (@bufs_len bytes, at least plx_pool_bufs_memsize()),
 * with its free-buffer stack in @stack (@count entries) instead of after
 * the buffers. pollux reads and writes @stack only, never the buffers:
 * they may be memory the CPU must not touch, such as CUDA device memory
 * (a pool of KV-cache blocks on a GPU, registered with
 * plx_mem_register() like any region). Such a pool cannot be a
 * transport's receive pool (plx_tcp_config.msg_pool,
 * plx_rdma_config.recv_pool), whose buffers the CPU reads and writes.
 * Return: 0; PLX_EINVAL (NULL, zero sizes); PLX_ENOSPC (@bufs_len too
 * small, or that size overflows).
 * Thread context: any thread.
 */
PLX_API int plx_pool_init_split(struct plx_pool *pool, void *bufs,
				size_t bufs_len, size_t buf_size,
				uint32_t count, uint32_t *stack);

/*
 * plx_pool_get() - take a free buffer, O(1).
 * Return: the buffer (plx_pool_buf_size() bytes), or NULL when empty.
 */
PLX_API void *plx_pool_get(struct plx_pool *pool);

/*
 * plx_pool_put() - return @buf, O(1).
 * Return: 0; PLX_EINVAL (@buf is not the start of a buffer of this pool);
 * PLX_EALREADY (double put detected: the pool is already full).
 */
PLX_API int plx_pool_put(struct plx_pool *pool, void *buf);

/* plx_pool_buf_size() - the buffer stride (size rounded up to 64). */
PLX_API size_t plx_pool_buf_size(const struct plx_pool *pool);
/* plx_pool_avail() - free buffers right now. */
PLX_API uint32_t plx_pool_avail(const struct plx_pool *pool);
/* plx_pool_count() - buffers in the pool. */
PLX_API uint32_t plx_pool_count(const struct plx_pool *pool);
/* plx_pool_index() - index of @buf in the pool, or -1 if not a buffer. */
PLX_API int64_t plx_pool_index(const struct plx_pool *pool, const void *buf);

/* ----------------------------------------------------------------------
 * Regions
 */

/* Access rights a registration grants to peers. */
#define PLX_ACCESS_REMOTE_READ 0x1u  /* peers may read (plx read op) */
#define PLX_ACCESS_REMOTE_WRITE 0x2u /* peers may write (write, write_imm) */
#define PLX_ACCESS_ALL (PLX_ACCESS_REMOTE_READ | PLX_ACCESS_REMOTE_WRITE)

/* Transport hints carried in a descriptor. */
#define PLX_HINT_TCP 0x1u  /* reachable through the TCP transport */
#define PLX_HINT_RDMA 0x2u /* has an RDMA rkey (rkey field valid) */
#define PLX_HINT_CUDA 0x4u /* the memory is CUDA device memory */

/*
 * struct plx_region - caller-owned registration handle; private fields.
 * It must stay in place while registered.
 */
struct plx_region {
	uint64_t plx_addr;
	uint64_t plx_len;
	uint64_t plx_key;
	uint32_t plx_access;
	uint32_t plx_hints;
	uint32_t plx_rkey;
	uint32_t plx_flags;
	void *plx_transport[4]; /* per-transport state (e.g. an ibv_mr) */
	char plx_name[64];	/* "" or the name given by plx_mem_name() */
};

/* Longest region name, in bytes, without the terminating NUL. */
#define PLX_NAME_MAX 63

/*
 * struct plx_desc - a region as a peer sees it. Plain data; safe to copy.
 */
struct plx_desc {
	uint64_t addr;	   /* region start, in the owner's address space */
	uint64_t len;	   /* region length in bytes */
	uint64_t key;	   /* the registration's key */
	uint8_t owner[16]; /* owner reactor's node id */
	uint32_t access;   /* PLX_ACCESS_* granted */
	uint32_t hints;	   /* PLX_HINT_* */
	uint32_t rkey;	   /* RDMA rkey, valid with PLX_HINT_RDMA */
};

/* Size of the serialised descriptor; buffers of this size always suffice. */
#define PLX_DESC_BYTES 64

/*
 * plx_mem_register() - register [@addr, @addr + @len) with @access rights
 * and a fresh random key. The region may overlap other registrations.
 * Return: 0; PLX_EINVAL (NULL, zero length, range wrapping or ending at
 * 2^64, unknown access bits); PLX_EBUSY (@reg is already registered);
 * PLX_ENOSPC (max_regions registered); PLX_EIO (no randomness); with the
 * RDMA transport attached, what ibv_reg_mr() failed with (-errno, or
 * PLX_EVERBS): the region is then not registered. With it, the region
 * also gets an MR and its descriptor an rkey (PLX_HINT_RDMA).
 * Thread context: owner thread.
 */
PLX_API int plx_mem_register(struct plx_reactor *r, struct plx_region *reg,
			     void *addr, size_t len, uint32_t access);

/*
 * plx_mem_register_mt() - plx_mem_register() for large regions, from any
 * thread, without stalling the reactor: the arguments are checked and the
 * memory is pinned for the RDMA transport (ibv_reg_mr, the expensive
 * part) on the calling thread; the owner thread then adds @reg to its
 * registry in the ring phase of its next poll (no verbs call there) and
 * completes @req with 0 or a plx_mem_register() status (the pinning is
 * undone then). @reg must not be in use until @req completes.
 * @req: prepared with plx_req_init(): a callback (owner thread) or a
 * completion handle (plx_req_wait_mt()).
 * Return: 0 (queued: @req completes exactly once); PLX_EINVAL; PLX_EBUSY
 * (@req in flight); PLX_EAGAIN (request ring full: nothing registered,
 * nothing pinned; try again); what pinning failed with (-errno or
 * PLX_EVERBS). Thread context: any thread, once the transports are
 * attached and while the reactor is not being finished.
 */
PLX_API int plx_mem_register_mt(struct plx_reactor *r, struct plx_region *reg,
				void *addr, size_t len, uint32_t access,
				struct plx_req *req);

/*
 * plx_mem_deregister() - revoke @reg: its key fails every lookup from now
 * on, and every transport stops touching the memory before this returns:
 * a remote write still landing in it is cut off (the rest of its payload
 * is dropped and the writer gets PLX_EKEYREJECTED), a read response not
 * yet sent from it becomes PLX_EKEYREJECTED, and a connection in the
 * middle of sending one from it is closed; its RDMA MR is deregistered
 * (a peer's RDMA access fails with PLX_EACCES, this reactor's RDMA ops in
 * flight from or into it with PLX_EFAULT). The caller may free the memory
 * as soon as this returns.
 * Return: 0; PLX_ENOENT (not registered with @r); PLX_EBUSY (@reg is the
 * CUDA transport's bounce pool and some of it is in use: nothing
 * changed; once idle, deregistering it ends staging, docs/cuda.md).
 * Thread: owner.
 */
PLX_API int plx_mem_deregister(struct plx_reactor *r, struct plx_region *reg);

/*
 * plx_mem_name() - give registered @reg a name (1..PLX_NAME_MAX bytes,
 * NUL-terminated) under which peers can resolve it to a descriptor at any
 * time (plx_ep_resolve()), including regions registered after the peer
 * connected. Names are unique among live registrations; deregistering
 * drops the name. Any connected (authenticated) peer may resolve any name.
 * Return: 0; PLX_EINVAL (bad name); PLX_ENOENT (@reg not registered);
 * PLX_EEXIST (another live region has this name). Thread: owner thread.
 */
PLX_API int plx_mem_name(struct plx_reactor *r, struct plx_region *reg,
			 const char *name);

/*
 * plx_mem_find() - the live region named @name, or NULL. O(n) in the
 * number of registered regions. Thread context: owner thread.
 */
PLX_API struct plx_region *plx_mem_find(struct plx_reactor *r,
					const char *name);

/*
 * plx_mem_desc() - describe registered @reg for a peer.
 * Return: 0; PLX_ENOENT (not registered). Thread context: owner thread.
 */
PLX_API int plx_mem_desc(struct plx_reactor *r, const struct plx_region *reg,
			 struct plx_desc *out);

/*
 * plx_mem_lookup() - check a remote access against the registry, O(log n)
 * (O(1) for the key found last): a live registration with key @key must
 * contain [@addr, @addr + @len) and grant every bit of @access.
 * @reg_out: the matching registration, or NULL.
 * Return: 0; PLX_EKEYREJECTED (no live registration has @key);
 * PLX_EFAULT (range outside the region, or wrapping); PLX_EACCES (access
 * not granted). Thread context: owner thread.
 */
PLX_API int plx_mem_lookup(struct plx_reactor *r, uint64_t addr, uint64_t len,
			   uint64_t key, uint32_t access,
			   struct plx_region **reg_out);

/*
 * plx_desc_serialize() - write @d as PLX_DESC_BYTES bytes (format in
 * docs/wire-protocol.md: magic, version, length, fields little-endian).
 * Return: PLX_DESC_BYTES; PLX_ENOSPC (@cap too small); PLX_EINVAL.
 * Thread context: any thread.
 */
PLX_API int plx_desc_serialize(const struct plx_desc *d, void *buf, size_t cap);

/*
 * plx_desc_parse() - parse and validate @len bytes at @buf into @out
 * (written only on success).
 * Return: bytes consumed (PLX_DESC_BYTES); PLX_EBADMSG (bad magic, length
 * field, reserved bits or unknown flags); PLX_EPROTONOSUPPORT (unknown
 * version); PLX_EMSGSIZE (@len shorter than the descriptor: truncated).
 * Thread context: any thread.
 */
PLX_API int plx_desc_parse(struct plx_desc *out, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_MEM_H */
