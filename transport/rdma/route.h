/* SPDX-License-Identifier: MIT */
/*
 * Will the kernel resolve a peer's GID at once? On RoCE, ibv_modify_qp()
 * to RTR resolves the peer GID's route and neighbour (its MAC address)
 * before it returns. When the neighbour is not resolved yet, or the
 * kernel finds no way to the address through our port's netdev, that
 * call holds the owner thread for about a second (rdma_resolve_ip()'s
 * timeout), then fails. These functions ask the kernel over rtnetlink,
 * without waiting, what that resolution would find, and start the
 * neighbour's resolution, so that the QP is taken to RTR only once it
 * returns at once. docs/rdma.md, "Connection set-up", rule 9.
 */
#ifndef PLX_RDMA_ROUTE_H
#define PLX_RDMA_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

struct plx__rdma;

/* plx__gid_check() results besides a negative status */
#define PLX__GID_READY 0 /* a modify to RTR towards it returns at once */
#define PLX__GID_WAIT 1	 /* its neighbour is being resolved: ask again */

/*
 * plx__gid_check() - what a modify to RTR towards the peer's @gid would
 * meet, on RoCE (the caller checks the link layer).
 * Link-local and multicast GIDs hold their MAC address, and a transport
 * that cannot ask (no netdev known for its GID, no rtnetlink) answers
 * PLX__GID_READY: the modify then does what it always did.
 * @kick: start the neighbour's resolution (one UDP datagram to the
 * address's discard port, out of our port's netdev) if it is not
 * resolved.
 * Return: PLX__GID_READY; PLX__GID_WAIT; PLX_EHOSTUNREACH (no route out
 * of our port's netdev, another family than our GID's, or a local
 * address of another netdev: the kernel would wait, then fail).
 * Thread context: owner thread.
 */
int plx__gid_check(struct plx__rdma *d, const uint8_t gid[16], bool kick);

/* plx__gid_str() - @gid as an address for a log: "10.0.0.1" for an
 * IPv4-mapped GID, else IPv6 notation; PLX__GID_STR bytes at @out. */
#define PLX__GID_STR 46 /* INET6_ADDRSTRLEN */
void plx__gid_str(const uint8_t gid[16], char *out);

/* plx__gid_fini() - close what plx__gid_check() opened. */
void plx__gid_fini(struct plx__rdma *d);

#endif /* PLX_RDMA_ROUTE_H */
