/* SPDX-License-Identifier: MIT */
/*
 * pollux CUDA support (the CUDA runtime, loaded at run time).
 *
 * plx_cuda_init() attaches the CUDA transport to a reactor: it loads
 * libcudart, checks that a device is there, and from then on tells which
 * registered regions are CUDA device memory (pointer attributes, asked
 * once per registration, never per op): their descriptors carry
 * PLX_HINT_CUDA. Where the runtime, a driver or a device is missing,
 * plx_cuda_init() returns PLX_EUNAVAIL, says why through the log
 * callback, and the reactor keeps working without it.
 *
 * Ops whose local buffer lies in registered device memory (and a target
 * region that is device memory) are staged through pinned bounce buffers
 * the caller provides (plx_cuda_config.bounce): asynchronous copies on
 * pollux's own non-blocking streams, one event per bounce slot, polled in
 * the reactor's CUDA phase (only the oldest copy in flight per stream is
 * asked), and large transfers pipelined chunk by chunk so that copies and
 * the network overlap (docs/cuda.md). No call in plx_reactor_poll() waits
 * for the GPU. Without a bounce pool such ops fail with PLX_ENOTSUP.
 */
#ifndef POLLUX_CUDA_H
#define POLLUX_CUDA_H

#include <stdint.h>

#include "pollux/export.h"
#include "pollux/mem.h"
#include "pollux/reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CUDA transport configuration. Fill with plx_cuda_config_init() first. */
struct plx_cuda_config {
	const char *library; /* the CUDA runtime to load, or NULL:
			      * libcudart.so.13, .12, then libcudart.so;
			      * read only during plx_cuda_init() */
	int device;	     /* device ordinal the transport uses; 0 */
	/* Staging (ops on device memory). @bounce: a registered region of
	 * host memory that pollux uses as bounce buffers from
	 * plx_cuda_init() until plx_reactor_fini() (register it with the
	 * RDMA transport attached too, so staged RDMA ops have an MR). It
	 * is pinned with cudaHostRegister() unless it is already pinned
	 * (cudaHostAlloc). NULL: no staging; ops on device memory fail
	 * with PLX_ENOTSUP. */
	const struct plx_region *bounce;
	uint32_t chunk;		/* bytes per bounce slot, copy and network
				 * piece; 1 MiB; 4 KiB..256 MiB; the pool
				 * must hold at least 2 slots */
	uint32_t max_transfers; /* staged ops at once (copying, on the
				 * network, or waiting for slots): 256;
				 * beyond, submissions fail with PLX_EAGAIN */
	int gpudirect;		/* GPUDirect RDMA for registered device
				 * memory (with the RDMA transport
				 * attached): PLX_CUDA_GPUDIRECT_AUTO
				 * (default) or _OFF */
};

/* plx_cuda_config_init() - defaults (documented per field). Any thread. */
PLX_API void plx_cuda_config_init(struct plx_cuda_config *cfg);

/*
 * plx_cuda_init() - attach the CUDA transport to @r. @cfg may be NULL
 * (defaults); it is copied. Regions registered before stay unclassified
 * (host memory): attach before registering device memory.
 * Return: 0; PLX_EUNAVAIL (the runtime or one of its symbols missing, no
 * driver, or no device: the reason goes to the log callback); PLX_ENODEV
 * (@cfg->device is not a device ordinal); PLX_EINVAL; PLX_EEXIST
 * (already attached); PLX_ENOMEM; PLX_ECUDA (another CUDA error: see
 * plx_cuda_info()); PLX_EINVAL also for a bounce region that is not
 * registered host memory, a chunk out of range or a pool of fewer than 2
 * chunks. On failure nothing is left attached.
 * Thread context: owner thread. The caller's current CUDA device is the
 * same before and after the call. Detached by plx_reactor_fini().
 */
PLX_API int plx_cuda_init(struct plx_reactor *r,
			  const struct plx_cuda_config *cfg);

/* What plx_cuda_init() found. */
struct plx_cuda_info {
	char library[64];    /* the runtime loaded (its file name) */
	int runtime_version; /* cudaRuntimeGetVersion(), e.g. 13000 */
	int driver_version;  /* cudaDriverGetVersion() (0: no driver) */
	int device_count;    /* devices the runtime sees */
	int device;	     /* the ordinal in use */
	int last_error;	     /* the last cudaError_t the transport got
			      * (0: none): the original behind a PLX_E* */
};

/*
 * plx_cuda_info() - copy what plx_cuda_init() found into @out.
 * Return: 0; PLX_EUNAVAIL (not attached). Thread context: owner thread.
 */
PLX_API int plx_cuda_info(struct plx_reactor *r, struct plx_cuda_info *out);

/* Staging counters (plx_cuda_stats()). */
struct plx_cuda_stats {
	uint64_t staged_ops; /* ops that went through bounce buffers */
	uint64_t copies_d2h; /* device-to-host copies issued */
	uint64_t copies_h2d; /* host-to-device copies issued */
	uint64_t bytes_d2h, bytes_h2d;
	uint64_t copy_errors; /* copies that failed (see last_error) */
	uint64_t slot_waits;  /* times a transfer waited for a slot */
	uint64_t overlapped;  /* chunks copied while another chunk of the
				  * same transfer was on the network */
	uint32_t slots, slots_free;
	uint32_t max_copies_inflight;
};

/*
 * plx_cuda_stats() - copy the staging counters into @out.
 * Return: 0; PLX_EUNAVAIL (not attached). Thread context: owner thread.
 */
PLX_API int plx_cuda_stats(struct plx_reactor *r, struct plx_cuda_stats *out);

/*
 * plx_cuda_probe() - without attaching anything: can the runtime be
 * loaded and does it see a device? @why_out (may be NULL): a static text
 * saying what is missing. @library: as plx_cuda_config.library.
 * Return: 0 (usable); PLX_EUNAVAIL. Thread context: any thread.
 */
PLX_API int plx_cuda_probe(const char *library, const char **why_out);

/*
 * GPUDirect RDMA (docs/cuda.md). With the RDMA transport attached, device
 * memory is registered with the NIC at plx_mem_register() as
 * plx_cuda_config.gpudirect says:
 *  - PLX_CUDA_GPUDIRECT_AUTO: a dma-buf exported by the CUDA driver
 *    (ibv_reg_dmabuf_mr), else ibv_reg_mr on the device pointer
 *    (nvidia-peermem), else no MR: staging;
 *  - PLX_CUDA_GPUDIRECT_OFF: no MR, always staging.
 * A region with an MR has an rkey (PLX_HINT_RDMA) and peers reach it over
 * RDMA; one without is reached over TCP and staged by its owner.
 */
#define PLX_CUDA_GPUDIRECT_AUTO 0
#define PLX_CUDA_GPUDIRECT_OFF 1

/* The path a registered region took (plx_cuda_region_path()). */
enum plx_cuda_path {
	PLX_CUDA_PATH_NONE = 0,	   /* not device memory */
	PLX_CUDA_PATH_STAGING = 1, /* device memory without an MR */
	PLX_CUDA_PATH_DMABUF = 2,  /* MR from ibv_reg_dmabuf_mr() */
	PLX_CUDA_PATH_PEERMEM = 3, /* MR from ibv_reg_mr() (nvidia-peermem) */
};

struct plx_region;

/*
 * plx_cuda_region_path() - which path @reg, registered with @r, took:
 * decided once, at registration (or, for device memory registered before
 * plx_rdma_init(), when the RDMA transport attached).
 * Return: a PLX_CUDA_PATH_* (>= 0); PLX_EINVAL (NULL); PLX_EUNAVAIL (the
 * CUDA transport is not attached); PLX_ENOENT (@reg is not registered
 * with @r). Thread context: owner thread.
 */
PLX_API int plx_cuda_region_path(struct plx_reactor *r,
				 const struct plx_region *reg);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_CUDA_H */
