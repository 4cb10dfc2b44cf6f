/* The sandbox runtime: builds an isolated sandbox around one command and
 * waits for it.
 *
 * sb_run() is the whole lifecycle: it computes the mount plan from the policy,
 * creates the cgroup when limits are asked for, clones the sandbox's pid 1
 * into new user, mount, pid, net, ipc, uts and cgroup namespaces, lets it build
 * its root and lock itself down (Landlock, seccomp, no capabilities), runs the
 * command, and tears everything down when the command exits, when the timeout
 * fires, or (through a janitor process) when the caller is killed.
 */
#ifndef AIRLOCK_SANDBOX_H
#define AIRLOCK_SANDBOX_H

#include <stdint.h>
#include <sys/types.h>

#include "airlock/settings.h"

/* How the command ended. */
enum sb_outcome {
    SB_EXITED = 0,      /* `code` is the exit status */
    SB_SIGNALED = 1,    /* `code` is the signal number */
    SB_NOT_FOUND = 2,   /* exec failed: no such command (127) */
    SB_NOT_EXEC = 3,    /* exec failed: not executable (126) */
    SB_TIMED_OUT = 4,   /* the timeout fired; the whole tree was killed */
    SB_MEMORY_OOM = 5,  /* killed by the memory limit (`code` = signal) */
    SB_SETUP_FAILED = 6 /* the sandbox could not be built; see al_error_last() */
};

struct sb_result {
    enum sb_outcome outcome;
    int code;
};

/* Called inside the sandbox, in the command's process, after every
 * restriction is in place, instead of exec'ing argv. Returns the exit status. */
typedef int (*sb_inner_fn)(void *payload);

/* Called in the parent once the sandbox's namespaces exist, before the
 * command starts: `netns_fd` is the sandbox's network namespace (the caller
 * may setns() a thread into it to create listeners there). Non-zero aborts. */
typedef int (*sb_netns_fn)(int netns_fd, void *payload);

/* A host file bound read-only at another path inside the sandbox. */
struct sb_file_bind {
    const char *src; /* host file (the caller's; airlock run's private
                        runtime directory) */
    const char *dst; /* absolute path inside the sandbox */
};

struct sb_config {
    const struct al_policy *policy; /* after sb_policy_add_defaults() */
    const char *cwd;                /* workspace: read-write, initial cwd */
    const char *home;               /* the caller's home, for "~" and defaults */
    char *const *argv;              /* command (argv[0] looked up in PATH) */
    char *const *envp;              /* the command's whole environment */
    sb_inner_fn inner;              /* if set, run this instead of argv */
    void *inner_payload;
    sb_netns_fn on_netns; /* optional network hook */
    void *netns_payload;
    const uint16_t *tcp_connect_ports; /* TCP ports the sandbox may connect to
                                          (its proxies' listeners); Landlock
                                          denies every other connect */
    size_t n_tcp_connect_ports;
    const char *const *ro_paths; /* host files or dirs bound read-only at the
                                    same path, even where the sandbox has
                                    private copies (/tmp, /run), e.g. a
                                    helper program airlock ships; missing
                                    paths are skipped */
    size_t n_ro_paths;
    /* Host files bound read-only over `dst` inside the sandbox, after every
     * other mount (so they also win inside a hidden directory or a writable
     * one): masked copies of credential files, the session CA bundle. A
     * missing `dst` is created where airlock's own mounts allow it (a hidden
     * directory, /run); elsewhere the setup fails. The weaker mode has no
     * mounts and binds nothing. */
    const struct sb_file_bind *file_binds;
    size_t n_file_binds;
    /* A terminal of the sandbox's own (`airlock run` on a terminal). With
     * pty_stdio non-zero, the command's process opens a new pseudo-terminal
     * from the sandbox's private devpts, makes it its controlling terminal
     * and its stdin (bit 0), stdout (bit 1), stderr (bit 2) as pty_stdio
     * says, sends the master over the unix socket pty_sock (SCM_RIGHTS with
     * the byte 'p') and waits for the byte 'g' back before it execs (the
     * caller sets the size and modes meanwhile). The caller's descriptors
     * in those slots never reach the command, and the sandbox's pid 1 puts
     * /dev/null there. SIGWINCH is then not forwarded: the caller sets the
     * master's size, and the kernel signals the terminal's foreground
     * process group. pty_sock is only read when pty_stdio is non-zero. */
    unsigned pty_stdio;
    int pty_sock;

    uint64_t memory_mb; /* 0 = no limit */
    uint64_t pids;      /* 0 = no limit */
    double cpus;        /* 0 = no limit; 1.5 = one and a half cores */
    unsigned timeout_s; /* 0 = none */
    int debug;          /* log each step at debug level */
};

/* Adds the built-in part of every policy to `policy`: `cwd` writable, the
 * credential stores under `home` (~/.ssh, ~/.aws, ...) and /etc/shadow & co.
 * hidden. 0 or AL_ENOMEM. */
int sb_policy_add_defaults(struct al_policy *policy, const char *cwd, const char *home);

/* Runs cfg->argv in a new sandbox and waits for it. Returns 0 and fills `out`
 * (every outcome except SB_SETUP_FAILED), or a negative AL_E* code when the
 * sandbox could not be built, with the reason in al_error_last(); then
 * out->outcome is SB_SETUP_FAILED. Never leaves a process, cgroup, mount or
 * placeholder file behind. Not thread-safe (uses signals and fork). */
int sb_run(struct sb_result *out, const struct sb_config *cfg);

/* Like sb_run() where namespaces cannot be created (nested in another
 * sandbox or an unprivileged container): Landlock, seccomp and
 * no_new_privs only. No private /tmp, /proc, pids or network isolation beyond
 * Landlock's TCP rules; denied paths are hidden by Landlock alone. */
int sb_run_weaker(struct sb_result *out, const struct sb_config *cfg);

/* The exit status airlock reports for a result: the command's own code,
 * 128+N for signal N, 127 not found, 126 not executable, 124 timeout, 137
 * out of memory, 125 setup failure. */
int sb_result_exit_status(const struct sb_result *result);

#endif
