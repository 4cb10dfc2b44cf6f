/* A session's processes: the process object, the table's operations, the
 * exits (process.c). Fields under d->lock (daemon.h). */
#ifndef ALD_CORE_PROCESS_H
#define ALD_CORE_PROCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "airlockd/core/principal.h"

struct ald;
struct ald_session;

enum ald_proc_state { ALD_P_SPAWNING, ALD_P_RUNNING, ALD_P_EXITED };

struct ald_proc {
    struct ald_proc *next;
    struct ald_session *s;
    uint64_t num;     /* "p_<num>"; also the SPAWN request id */
    uint32_t init_id; /* init's id, from SPAWNED */
    pid_t pid;        /* inside the sandbox */
    enum ald_proc_state state;
    int background;
    int spawn_err;    /* SPAWN_FAILED's errno (0: it started) */
    int refs;         /* 1 while not exited, +1 per request thread using it */
    int exit_efd;     /* eventfd, readable from the moment it exited */
    int stdin_fd;     /* background: our end of its stdin pipe; a terminal's:
                         its master; -1 when none */
    int tty;          /* runs on a terminal of the sandbox (tty.h) */
    int tty_fd;       /* our copy of that terminal's master; -1 when none */
    int tty_attached; /* a reader has the terminal (exec stream, WebSocket) */
    int tty_hold;     /* holds a reference for the first reader (tty.h) */
    json_t *argv;
    uint64_t started_ms, ended_ms, start_mono;
    /* exit, valid once ALD_P_EXITED */
    int code; /* -1: none */
    int sig;  /* 0: none */
    const char *reason;
    uint64_t duration_ms;
    uint64_t earliest[2]; /* first kept byte of stdout, stderr (background) */
    int exit_published;   /* its exit is saved and published (ald_proc_publish_exit) */
};

/* The public JSON object of a process (caller holds d->lock). */
json_t *ald_proc_json(const struct ald *d, const struct ald_proc *p);
/* Saves the process row (takes d->lock to build it). */
int ald_proc_save(struct ald *d, struct ald_proc *p);
/* ald_proc_save with the audit row of the request that ran it, in one
 * transaction (see ald_store_proc_put_audit); audit NULL: the row alone. */
int ald_proc_save_audit(struct ald *d, struct ald_proc *p, const struct ald_audit_row *audit);
/* Drops a reference (takes d->lock); frees an exited process with none left. */
void ald_proc_unref(struct ald *d, struct ald_proc *p);
/* Finds a live process of `s` by number and takes a reference, or NULL. */
struct ald_proc *ald_proc_find(struct ald *d, struct ald_session *s, uint64_t num);
/* Records an exit (caller holds d->lock); publishes nothing. 1 when this
 * call made the process exited (the caller then owns its running
 * reference), 0 when it had exited already. */
int ald_proc_set_exit(struct ald *d, struct ald_proc *p, int code, int sig, const char *reason,
                      uint64_t duration_ms);
/* After ald_proc_set_exit() without d->lock: saves, publishes, counts. */
void ald_proc_exited(struct ald *d, struct ald_proc *p);
/* ald_proc_exited without the save: the exit event, a limit event and the
 * metrics (for a caller that saved the exit itself), then exit_published
 * (d->cond broadcast). */
void ald_proc_publish_exit(struct ald *d, struct ald_proc *p);
/* Output file of a background process. */
void ald_proc_out_path(const struct ald *d, const char *session, uint64_t num, int stream,
                       char *out, size_t size);
/* Keeps only max_output_bytes of each stream of the running background
 * processes (called by the reaper). */
void ald_procs_trim_output(struct ald *d);

#endif
