/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_two_process: RDMA between two processes, against real
 * rdma-core and soft-RoCE (run inside the guest by tests/rdma/
 * run-rxe-vm.sh; elsewhere, without a device, it exits 77).
 *
 * Each round forks a target process (TCP listener + RDMA, one registered
 * region, its descriptor sent to the parent through a pipe; it sleeps on
 * its reactor fd between polls). The parent connects, writes a pattern
 * (plain, split over 2 QPs, write_imm) and reads it back over RDMA, so the
 * bytes are checked in the other address space. Then it keeps 32
 * write_imm ops of 4 KiB in flight (each waits for the target's ack, so
 * they are outstanding even on soft-RoCE, whose loopback writes complete
 * inside ibv_post_send) and SIGKILLs the target 50..450 ms into the
 * stream: every op completes exactly once (success, or a failure status)
 * within a bound, the endpoint reports PLX_EP_DOWN, and the reactor
 * finishes with no QP left. Rounds: 3 (PLX_TEST_ROUNDS overrides).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pollux/pollux.h"
#include "pollux/rdma.h"

#define REG (4u << 20)
#define NOPS 32
#define OPLEN (4u * 1024)

static void quiet_log(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= PLX_LOG_WARN)
		fprintf(stderr, "[pid %d] %s\n", (int)getpid(), msg);
}

static int init_side(struct plx_reactor *r, struct plx_tcp_config *tc,
		     plx_ep_event_cb ev, plx_imm_cb imm)
{
	struct plx_reactor_config rc;
	struct plx_rdma_config dc;

	plx_reactor_config_init(&rc);
	rc.log_cb = quiet_log;
	rc.log_level = PLX_LOG_WARN;
	if (plx_reactor_init(r, &rc))
		return -1;
	plx_rdma_config_init(&dc);
	dc.qps_per_ep = 2;
	dc.split_min = 256 * 1024;
	if (plx_rdma_init(r, &dc))
		return PLX_EUNAVAIL;
	plx_tcp_config_init(tc);
	tc->event_cb = ev;
	tc->imm_cb = imm;
	return plx_tcp_init(r, tc);
}

/* ---- the target (child) ---------------------------------------------- */

static int child_imms;

static void child_imm(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
		      uint64_t addr, uint64_t len, void *arg)
{
	(void)r;
	(void)ep;
	(void)imm;
	(void)addr;
	(void)len;
	(void)arg;
	child_imms++;
}

static void child_event(struct plx_reactor *r, struct plx_ep *ep, int event,
			int status, void *arg)
{
	(void)r;
	(void)ep;
	(void)status;
	(void)arg;
	if (event == PLX_EP_DOWN || event == PLX_EP_CLOSED)
		_exit(0);
}

static void child(int wfd)
{
	static struct plx_reactor r;
	static struct plx_tcp_config tc;
	static struct plx_region reg;
	struct plx_desc d;
	uint8_t msg[PLX_DESC_BYTES + 2];
	uint16_t port;
	uint8_t *mem = aligned_alloc(4096, REG);

	if (!mem)
		_exit(3);
	if (init_side(&r, &tc, child_event, child_imm))
		_exit(77); /* no device: the parent skips */
	memset(mem, 0, REG);
	if (plx_mem_register(&r, &reg, mem, REG, PLX_ACCESS_ALL) ||
	    plx_mem_desc(&r, &reg, &d) || !(d.hints & PLX_HINT_RDMA) ||
	    plx_desc_serialize(&d, msg, PLX_DESC_BYTES) != PLX_DESC_BYTES ||
	    plx_tcp_listen(&r, "127.0.0.1", 0, &port))
		_exit(4);
	memcpy(msg + PLX_DESC_BYTES, &port, 2);
	if (write(wfd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		_exit(5);
	close(wfd);
	for (;;)
		plx_reactor_wait(&r, 100);
}

/* ---- the initiator (parent) ------------------------------------------- */

struct top {
	struct plx_op op;
	int done, status;
};

static int downs;

static void op_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct top *t = (struct top *)(void *)req;

	(void)r;
	t->done++;
	t->status = req->status;
}

static void parent_event(struct plx_reactor *r, struct plx_ep *ep, int event,
			 int status, void *arg)
{
	(void)r;
	(void)ep;
	(void)status;
	(void)arg;
	if (event == PLX_EP_DOWN)
		downs++;
}

static void poll_until(struct plx_reactor *r, const int *flag, int ms)
{
	uint64_t end = plx_now_ns() + (uint64_t)ms * 1000000ull;

	while (!*flag && plx_now_ns() < end)
		plx_reactor_poll(r);
}

static void op_wait(struct plx_reactor *r, struct top *t, int ms)
{
	poll_until(r, &t->done, ms);
	if (t->done != 1)
		PLX_FAIL("op completed %d times", t->done);
}

static void round_once(uint64_t *seed, int round)
{
	static struct plx_reactor r;
	static struct plx_tcp_config tc;
	static struct plx_region reg;
	static struct top t[NOPS];
	struct plx_desc d;
	struct plx_ep *ep;
	struct plx_rdma_stats st;
	uint8_t msg[PLX_DESC_BYTES + 2];
	uint8_t *mem = aligned_alloc(4096, REG), *back;
	uint16_t port;
	int pfd[2], status, rc, kill_at;
	uint64_t deadline = 0, kill_ns = 0, done_ns = 0, resubmits = 0;
	uint64_t start_ns;
	pid_t pid;

	EXPECT_TRUE(mem != NULL);
	EXPECT_OK(pipe(pfd));
	pid = fork();
	EXPECT_TRUE(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child(pfd[1]);
	}
	close(pfd[1]);
	if (read(pfd[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
		EXPECT_EQ(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
			if (getenv("PLX_RXE_VM"))
				PLX_FAIL("no RDMA device inside the guest");
			PLX_SKIP("no RDMA device on this host");
		}
		PLX_FAIL("target failed to start (status %#x)", status);
	}
	close(pfd[0]);
	EXPECT_EQ(plx_desc_parse(&d, msg, PLX_DESC_BYTES), PLX_DESC_BYTES);
	memcpy(&port, msg + PLX_DESC_BYTES, 2);

	rc = init_side(&r, &tc, parent_event, NULL);
	if (rc == PLX_EUNAVAIL) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (getenv("PLX_RXE_VM"))
			PLX_FAIL("no RDMA device inside the soft-RoCE guest");
		PLX_SKIP("no RDMA device on this host");
	}
	EXPECT_OK(rc);
	for (uint32_t i = 0; i < REG; i++)
		mem[i] = (uint8_t)(i * 13 + (uint32_t)round);
	EXPECT_OK(plx_mem_register(&r, &reg, mem, REG, PLX_ACCESS_ALL));
	EXPECT_OK(plx_tcp_connect(&r, "127.0.0.1", port, &ep));

	/* the pattern goes over, then comes back by RDMA read */
	plx_op_init(&t[0].op, op_cb, NULL);
	t[0].done = 0;
	EXPECT_OK(plx_ep_write(ep, &t[0].op, mem, 4096, &d, 0));
	op_wait(&r, &t[0], 10000);
	EXPECT_OK(t[0].status);
	plx_op_init(&t[0].op, op_cb, NULL);
	t[0].done = 0;
	EXPECT_OK(plx_ep_write(ep, &t[0].op, mem + 4096, 1u << 20, &d, 4096));
	op_wait(&r, &t[0], 10000);
	EXPECT_OK(t[0].status);
	plx_op_init(&t[0].op, op_cb, NULL);
	t[0].done = 0;
	EXPECT_OK(plx_ep_write_imm(ep, &t[0].op, mem + (2u << 20), 5000, &d,
				   2u << 20, 42));
	op_wait(&r, &t[0], 10000);
	EXPECT_OK(t[0].status);
	back = mem + (2u << 20) + 8192;
	memset(back, 0, 4096 + (1u << 20));
	plx_op_init(&t[0].op, op_cb, NULL);
	t[0].done = 0;
	EXPECT_OK(plx_ep_read(ep, &t[0].op, back, 4096 + (1u << 20), &d, 0));
	op_wait(&r, &t[0], 10000);
	EXPECT_OK(t[0].status);
	EXPECT_MEM_EQ(back, mem, 4096 + (1u << 20));
	/* and the write_imm's bytes, at 2 MiB over there */
	plx_op_init(&t[0].op, op_cb, NULL);
	t[0].done = 0;
	EXPECT_OK(plx_ep_read(ep, &t[0].op, back, 5000, &d, 2u << 20));
	op_wait(&r, &t[0], 10000);
	EXPECT_OK(t[0].status);
	EXPECT_MEM_EQ(back, mem + (2u << 20), 5000);
	EXPECT_OK(plx_rdma_stats(&r, &st));
	EXPECT_GE(st.ops_posted, 4);

	/* 32 write_imms in flight; the target dies somewhere in the stream */
	kill_at = 50 + (int)(plx_test_rand(seed) % 400); /* ms */
	start_ns = plx_now_ns();
	for (int i = 0; i < NOPS; i++) {
		plx_op_init(&t[i].op, op_cb, NULL);
		t[i].done = 0;
		t[i].status = 1;
		EXPECT_OK(plx_ep_write_imm(ep, &t[i].op, mem + OPLEN * i, OPLEN,
					   &d, OPLEN * (uint32_t)i,
					   (uint32_t)i));
	}
	for (;;) {
		int left = 0;

		if (!kill_ns &&
		    plx_now_ns() >= start_ns + (uint64_t)kill_at * 1000000ull) {
			EXPECT_OK(kill(pid, SIGKILL));
			kill_ns = plx_now_ns();
			deadline = kill_ns + 10000000000ull;
		}
		plx_reactor_poll(&r);
		for (int i = 0; i < NOPS; i++) {
			if (t[i].done > 1)
				PLX_FAIL("op %d completed twice", i);
			if (!t[i].done) {
				left++;
			} else if (t[i].status == 0 && !kill_ns) {
				/* resubmit: the stream goes on until the kill */
				t[i].done = 0;
				resubmits++;
				EXPECT_OK(plx_ep_write_imm(
					ep, &t[i].op, mem + OPLEN * i, OPLEN,
					&d, OPLEN * (uint32_t)i, (uint32_t)i));
				left++;
			}
		}
		if (!left && kill_ns) {
			done_ns = plx_now_ns();
			break;
		}
		if (deadline && plx_now_ns() > deadline)
			PLX_FAIL("%d ops still open 10 s after the kill", left);
	}
	EXPECT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_TRUE(WIFSIGNALED(status));
	poll_until(&r, &downs, 10000);
	EXPECT_GE(downs, 1);
	{
		int ok = 0, failed = 0, last = 0;

		for (int i = 0; i < NOPS; i++) {
			EXPECT_EQ(t[i].done, 1);
			if (t[i].status == 0)
				ok++;
			else
				failed++, last = t[i].status;
		}
		printf("round %d: killed %.0f ms into the stream (%llu "
		       "write_imm of 4 KiB done before): %d of the last %d "
		       "ok, %d failed (%s), the last %.1f ms after the kill\n",
		       round, (double)(kill_ns - start_ns) / 1e6,
		       (unsigned long long)resubmits, ok, NOPS, failed,
		       failed ? plx_errname(last) : "-",
		       (double)(done_ns - kill_ns) / 1e6);
	}
	plx_ep_close(ep);
	EXPECT_OK(plx_mem_deregister(&r, &reg));
	EXPECT_OK(plx_tcp_shutdown(&r));
	{
		uint64_t end = plx_now_ns() + 10000000000ull;

		while ((rc = plx_reactor_fini(&r)) == PLX_EBUSY &&
		       plx_now_ns() < end)
			plx_reactor_poll(&r);
		EXPECT_OK(rc);
	}
	downs = 0;
	free(mem);
}

int main(void)
{
	uint64_t seed = plx_test_seed("test_rdma_two_process");
	const char *n = getenv("PLX_TEST_ROUNDS");
	int rounds = n ? atoi(n) : 3;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < rounds; i++)
		round_once(&seed, i);
	printf("test_rdma_two_process: %d rounds passed\n", rounds);
	return 0;
}
