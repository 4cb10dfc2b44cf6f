/* The front of airlock-gitproxy: the process tree that parses what
 * sandboxes send (OpenSMTPD's privilege separation; docs/gitproxy.md).
 *
 * The key holder execs this program with --front FD while still root, so the
 * front starts from a fresh image: none of the key holder's memory (token
 * keys, master key, credential store) is ever in it. It then, before reading
 * anything else:
 *   1. receives ZYGOTE_INIT (who to run as, the cache dir, the checks);
 *   2. drops to that user for good, with no_new_privs (ctl_privs_drop);
 *   3. makes itself unkillable by nothing but its parent dying (PDEATHSIG);
 *   4. initialises libgit2 with no configuration file search paths;
 *   5. loads its seccomp filter (front_seccomp.c): no exec, no new sockets,
 *      no ptrace, no namespaces, ...
 * and becomes a zygote: for each ZYGOTE_CONN (a client connection and the
 * worker's end of its channel) it forks one worker, which serves that one
 * connection (worker.c) and exits. The zygote itself never reads a byte a
 * client sends, and a worker only ever sees its own connection's bytes and
 * its own session's scoped token. */
#include "gp_chan.h"
#include "gp_front.h"
#include "gp_inspect.h"

#include "airlock/ctlmsg.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int init_read(struct gp_front_cfg *cfg, int zfd, char *user, size_t usz, char *group,
                     size_t gsz)
{
    uint8_t buf[GP_CHAN_MSG_MAX];
    size_t nfds;
    ssize_t n = gp_chan_recv(zfd, buf, sizeof(buf), NULL, 0, &nfds);
    if (n <= 0)
        return n == 0 ? al_error_set(AL_EIO, "the key holder went away") : (int)n;
    struct gp_rd r;
    if (gp_rd_init(&r, buf, (size_t)n) != GP_CH_ZYGOTE_INIT)
        return al_error_set(AL_EINVAL, "expected ZYGOTE_INIT");
    gp_rd_str(&r, user, usz);
    gp_rd_str(&r, group, gsz);
    gp_rd_str(&r, cfg->cache_dir, sizeof(cfg->cache_dir));
    cfg->leak_guard = gp_rd_u8(&r);
    cfg->check_ff = gp_rd_u8(&r);
    cfg->max_push = gp_rd_u64(&r);
    cfg->verbose = gp_rd_u8(&r);
    return gp_rd_end(&r, "ZYGOTE_INIT");
}

/* Checks, as the user the front runs as by now, that it can create and
 * remove a file in the cache dir (where pushed packs and mirrors go): a
 * front that cannot would fail every inspected push. */
static int cache_dir_check(const char *dir)
{
    char path[4200], name[64];
    struct passwd *pw = getpwuid(geteuid());
    if (pw)
        snprintf(name, sizeof(name), "%s", pw->pw_name);
    else
        snprintf(name, sizeof(name), "uid %u", (unsigned)geteuid());
    int n = snprintf(path, sizeof(path), "%s/.airlock-check-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return al_error_set(AL_EINVAL, "cache_dir %s: path too long", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0 && unlink(path) == 0) {
        close(fd);
        return 0;
    }
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (e == EACCES)
        return al_error_set(AL_EPERM,
                            "cache_dir %s: not usable by user %s: %s (is every parent directory "
                            "searchable by %s?)",
                            dir, name, strerror(e), name);
    return al_error_set(AL_EIO, "cache_dir %s: not usable by user %s: %s", dir, name, strerror(e));
}

/* Tells the key holder how the start went: READY, or FAIL with the reason. */
static void start_report(int zfd, int err)
{
    uint8_t buf[1200];
    struct gp_wire w;
    if (err == 0) {
        gp_wire_init(&w, buf, sizeof(buf), GP_CH_ZYGOTE_READY);
    } else {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", al_error_last()[0] ? al_error_last() : al_error_name(err));
        for (char *q = msg; *q; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
                *q = '?';
        gp_wire_init(&w, buf, sizeof(buf), GP_CH_FAIL);
        gp_wire_u16(&w, 500);
        gp_wire_str(&w, msg);
    }
    gp_chan_send(zfd, &w, NULL, 0);
}

/* Reaps every worker that has ended. */
static void reap(size_t *live)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (*live)
            (*live)--;
        if (WIFSIGNALED(status))
            al_log(AL_LOG_WARN, "front worker %d killed by signal %d", (int)pid, WTERMSIG(status));
    }
}

int gp_front_main(int zfd)
{
    struct gp_front_cfg cfg;
    char user[64] = "", group[64] = "";
    memset(&cfg, 0, sizeof(cfg));
    al_log_init("airlock-gitproxy[front]", AL_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    int err = init_read(&cfg, zfd, user, sizeof(user), group, sizeof(group));
    if (err < 0)
        goto fail;
    if (cfg.verbose)
        al_log_init("airlock-gitproxy[front]", AL_LOG_DEBUG);
    if (geteuid() == 0) {
        if ((err = ctl_privs_drop(user[0] ? user : "nobody", group[0] ? group : NULL)) < 0)
            goto fail;
    } else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        err = al_error_set_errno(AL_EPERM, errno, "PR_SET_NO_NEW_PRIVS");
        goto fail;
    }
    /* The key holder is our parent: when it goes, so do we. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) {
        err = al_error_set(AL_EIO, "the key holder went away");
        goto fail;
    }
    if ((err = cache_dir_check(cfg.cache_dir)) < 0)
        goto fail;
    if (chdir(cfg.cache_dir) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "cache_dir %s", cfg.cache_dir);
        goto fail;
    }
    if ((err = gp_inspect_global_init(NULL)) < 0)
        goto fail;
    if ((err = gp_front_seccomp_apply()) < 0)
        goto fail;
    start_report(zfd, 0);
    al_log(AL_LOG_DEBUG, "front ready as uid %u", (unsigned)getuid());
    size_t live = 0;
    for (;;) {
        struct pollfd pfd = {zfd, POLLIN, 0};
        int rc = poll(&pfd, 1, 1000);
        reap(&live);
        if (rc < 0 && errno != EINTR) {
            err = al_error_set_errno(AL_EIO, errno, "poll");
            goto fail;
        }
        if (rc <= 0)
            continue;
        uint8_t buf[64];
        int fds[2];
        size_t nfds;
        ssize_t n = gp_chan_recv(zfd, buf, sizeof(buf), fds, 2, &nfds);
        if (n == 0)
            break; /* the key holder closed: we are done */
        struct gp_rd r;
        if (n < 0 || gp_rd_init(&r, buf, (size_t)n) != GP_CH_ZYGOTE_CONN ||
            gp_rd_end(&r, "ZYGOTE_CONN") < 0 || nfds != 2) {
            for (size_t i = 0; i < nfds; i++)
                close(fds[i]);
            err = n < 0 ? (int)n : al_error_set(AL_EINVAL, "bad ZYGOTE_CONN message");
            goto fail; /* the control side is broken: nothing sane to do */
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(zfd);
            _exit(gp_worker_serve(&cfg, fds[0], fds[1]) < 0 ? 1 : 0);
        }
        if (pid < 0)
            al_log(AL_LOG_ERROR, "fork: %s; connection dropped", strerror(errno));
        else
            live++;
        close(fds[0]);
        close(fds[1]);
    }
    return 0;
fail:
    start_report(zfd, err);
    return 1;
}
