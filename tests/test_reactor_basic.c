/* SPDX-License-Identifier: MIT */
/* Reactor lifecycle: init/fini, config validation, idle poll, identity,
 * counters, fini refusing while work is live, the owner-thread check. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pollux/pollux.h"

static void test_init_fini_defaults(void)
{
	struct plx_reactor r;
	struct plx_reactor_stats st;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	EXPECT_GE(plx_reactor_fd(&r), 0);
	for (int i = 0; i < 1000; i++)
		EXPECT_EQ(plx_reactor_poll(&r), 0);
	EXPECT_OK(plx_reactor_stats(&r, &st));
	EXPECT_U64_EQ(st.polls, 1000);
	EXPECT_U64_EQ(st.events, 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_config_rejected(void)
{
	struct plx_reactor r;
	struct plx_reactor_config cfg;

	plx_reactor_config_init(&cfg);
	cfg.ring_capacity = 1000; /* not a power of two */
	EXPECT_STATUS(plx_reactor_init(&r, &cfg), PLX_EINVAL);
	plx_reactor_config_init(&cfg);
	cfg.max_batch = 0;
	EXPECT_STATUS(plx_reactor_init(&r, &cfg), PLX_EINVAL);
	plx_reactor_config_init(&cfg);
	cfg.max_timers = 0;
	EXPECT_STATUS(plx_reactor_init(&r, &cfg), PLX_EINVAL);
	EXPECT_STATUS(plx_reactor_init(NULL, NULL), PLX_EINVAL);
}

static void test_identity_random_and_configurable(void)
{
	struct plx_reactor a, b;
	struct plx_reactor_config cfg;
	uint8_t ida[16], idb[16], zero[16] = {0};
	uint64_t ea, eb;

	EXPECT_OK(plx_reactor_init(&a, NULL));
	EXPECT_OK(plx_reactor_init(&b, NULL));
	plx_reactor_node_id(&a, ida, &ea);
	plx_reactor_node_id(&b, idb, &eb);
	EXPECT_TRUE(memcmp(ida, zero, 16) != 0);
	EXPECT_TRUE(memcmp(ida, idb, 16) != 0);
	EXPECT_NE(ea, 0);
	EXPECT_NE(ea, eb);
	EXPECT_OK(plx_reactor_fini(&a));
	EXPECT_OK(plx_reactor_fini(&b));

	/* a fixed node id is kept; the epoch is new on every init */
	plx_reactor_config_init(&cfg);
	memset(cfg.node_id, 0xab, 16);
	EXPECT_OK(plx_reactor_init(&a, &cfg));
	plx_reactor_node_id(&a, ida, &ea);
	EXPECT_MEM_EQ(ida, cfg.node_id, 16);
	EXPECT_OK(plx_reactor_fini(&a));
	EXPECT_OK(plx_reactor_init(&a, &cfg));
	plx_reactor_node_id(&a, idb, &eb);
	EXPECT_MEM_EQ(idb, cfg.node_id, 16);
	EXPECT_NE(ea, eb);
	EXPECT_OK(plx_reactor_fini(&a));
}

static void on_timer(struct plx_reactor *r, struct plx_timer *t)
{
	(void)r;
	(*(int *)t->user)++;
}

static int call_ok(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	return 7;
}

static int call_later(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	return PLX_EINPROGRESS;
}

static void test_fini_busy_while_live(void)
{
	struct plx_reactor r;
	struct plx_timer t;
	struct plx_req req;
	int fired = 0;

	EXPECT_OK(plx_reactor_init(&r, NULL));

	/* an armed timer keeps the reactor alive */
	plx_timer_init(&t, on_timer, &fired);
	EXPECT_OK(plx_timer_start(&r, &t, 1000000000ull, 0));
	EXPECT_STATUS(plx_reactor_fini(&r), PLX_EBUSY);
	EXPECT_OK(plx_timer_stop(&r, &t));

	/* a request in the ring keeps it alive until drained */
	plx_req_init(&req, NULL, NULL);
	EXPECT_OK(plx_submit_call_mt(&r, &req, call_ok));
	EXPECT_STATUS(plx_reactor_fini(&r), PLX_EBUSY);
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_TRUE(plx_req_test_mt(&req));
	EXPECT_EQ(req.status, 7);

	/* a request awaiting plx_req_complete() keeps it alive */
	EXPECT_OK(plx_submit_call_mt(&r, &req, call_later));
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_STATUS(plx_reactor_fini(&r), PLX_EBUSY);
	EXPECT_OK(plx_req_complete(&r, &req, PLX_ECANCELED, 0));
	EXPECT_STATUS(plx_reactor_fini(&r), PLX_EBUSY); /* deferred */
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_STATUS(req.status, PLX_ECANCELED);

	/* the refused fini left the reactor fully usable */
	EXPECT_OK(plx_timer_start(&r, &t, 0, 0));
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_EQ(fired, 1);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_strerror_covers_codes(void)
{
	static const int codes[] = {
		PLX_EAGAIN,   PLX_EBUSY,     PLX_EINVAL,    PLX_ENOSPC,
		PLX_EPROTO,   PLX_ECANCELED, PLX_ETIMEDOUT, PLX_EKEYREJECTED,
		PLX_EUNAVAIL, PLX_EAUTH,     PLX_EVERSION,  PLX_EREMOTE,
		PLX_EVERBS,   PLX_ECUDA,
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		EXPECT_TRUE(strcmp(plx_strerror(codes[i]), "unknown error"));
		EXPECT_TRUE(strncmp(plx_errname(codes[i]), "PLX_E", 5) == 0);
		EXPECT_TRUE(strcmp(plx_errname(codes[i]), "PLX_E?"));
	}
	EXPECT_TRUE(!strcmp(plx_errname(PLX_EAGAIN), "PLX_EAGAIN"));
	EXPECT_TRUE(!strcmp(plx_errname(0), "PLX_OK"));
	EXPECT_TRUE(!strcmp(plx_errname(-99999), "PLX_E?"));
	EXPECT_TRUE(!strcmp(plx_strerror(-99999), "unknown error"));
	EXPECT_EQ(PLX_EAGAIN, -EAGAIN);
	EXPECT_LT(PLX_EUNAVAIL, -4095);
}

struct log_rec {
	int count;
	int level;
	char msg[256];
};

static void log_sink(void *arg, int level, const char *msg)
{
	struct log_rec *rec = arg;

	rec->count++;
	rec->level = level;
	snprintf(rec->msg, sizeof(rec->msg), "%s", msg);
}

static void test_log_callback_receives_diagnostics(void)
{
	struct plx_reactor r;
	struct plx_reactor_config cfg;
	struct plx_timer t;
	struct log_rec rec = {0};
	int fired = 0;

	plx_reactor_config_init(&cfg);
	cfg.log_cb = log_sink;
	cfg.log_arg = &rec;
	cfg.log_level = PLX_LOG_DEBUG;
	EXPECT_OK(plx_reactor_init(&r, &cfg));
	plx_timer_init(&t, on_timer, &fired);
	EXPECT_OK(plx_timer_start(&r, &t, 1000000000ull, 0));
	EXPECT_STATUS(plx_reactor_fini(&r), PLX_EBUSY);
	EXPECT_GE(rec.count, 1);
	EXPECT_EQ(rec.level, PLX_LOG_DEBUG);
	EXPECT_TRUE(strstr(rec.msg, "timers 1") != NULL);
	EXPECT_OK(plx_timer_stop(&r, &t));
	EXPECT_OK(plx_reactor_fini(&r));
}

#ifndef NDEBUG
static void *poll_from_other_thread(void *arg)
{
	plx_reactor_poll(arg);
	return NULL;
}
#endif

static void test_owner_thread_asserted_in_debug(void)
{
#ifdef NDEBUG
	fprintf(stderr, "owner-thread check: release build, not compiled\n");
#else
	pid_t pid = fork();
	int status;

	EXPECT_GE(pid, 0);
	if (pid == 0) {
		struct plx_reactor r;
		pthread_t th;

		signal(SIGABRT, SIG_DFL);
		if (plx_reactor_init(&r, NULL))
			_exit(3);
		pthread_create(&th, NULL, poll_from_other_thread, &r);
		pthread_join(th, NULL);
		_exit(0); /* reached only if the check did not fire */
	}
	EXPECT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(WTERMSIG(status), SIGABRT);
#endif
}

int main(void)
{
	test_init_fini_defaults();
	test_config_rejected();
	test_identity_random_and_configurable();
	test_fini_busy_while_live();
	test_strerror_covers_codes();
	test_log_callback_receives_diagnostics();
	test_owner_thread_asserted_in_debug();
	return 0;
}
