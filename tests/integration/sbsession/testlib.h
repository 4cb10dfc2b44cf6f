/* Fixtures for the long-lived sandbox tests (integration and attacks): a
 * scratch workspace and state dir under /var/tmp, a default policy, and a
 * helper that runs one command in a session and collects its output. */
#ifndef AIRLOCK_SBS_TESTLIB_H
#define AIRLOCK_SBS_TESTLIB_H

#include "airlock/sbsession.h"
#include "airlock/settings.h"

#include <stddef.h>
#include <sys/types.h>

struct fixture {
    char base[64];   /* /var/tmp/sbs-test-XXXXXX */
    char ws[96];     /* base/ws-N: the workspace (owned by host_uid) */
    char state[96];  /* base/state-N: root-only, holds the socket */
    char sock[128];  /* state/ctl.sock */
    char cgname[64]; /* sbs-test-PID-N */
    struct al_policy pol;
    struct sbs_spec spec;
};

/* Creates the scratch dirs for session `n` of this test (host uid
 * `host_uid`, 0 = the caller's ids) and fills f->spec. Exits on failure. */
void fixture_init(struct fixture *f, const char *init_path, uid_t host_uid, int n);

/* Remembers a started sandbox: destroyed at exit if the test did not (a
 * failed check exits), so a failing test leaves nothing behind. */
void fixture_track(const struct sbs_record *rec);

/* Removes the scratch tree and frees the policy. */
void fixture_free(struct fixture *f);

/* How a command ended. */
struct run_result {
    int spawn_err; /* errno of SPAWN_FAILED, 0 if it ran */
    int status;    /* wait status */
    int timed_out;
    char out[8192]; /* stdout and stderr, NUL-terminated */
    size_t out_len;
};

/* Runs `argv` (environment `envp`, NULL = PATH only; `cwd` NULL = default)
 * in session `c` and waits for its end. 0, or -1 when the session failed. */
int run(struct sbs_conn *c, char *const *argv, char *const *envp, const char *cwd,
        uint32_t timeout_s, struct run_result *r);

/* Runs `sh -c script` and returns its exit code (-1 on a session error,
 * 128+N for signal N); its output in `out` when not NULL. */
int run_sh(struct sbs_conn *c, const char *script, struct run_result *out);

/* Waits for the next message of `c` that is about process `proc` (EXITED)
 * or request `req` (SPAWNED/SPAWN_FAILED); others are skipped. */
int wait_msg(struct sbs_conn *c, int type, uint32_t id, struct sbs_msg *out);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif
