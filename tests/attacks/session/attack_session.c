/* Attacks on a long-lived sandbox from inside it, as root on the host:
 *
 *   attack_session AIRLOCK_INIT SBS_PROBE CASE
 *
 * Each case starts a session (host uid != 0), copies sbs_probe into its
 * workspace, runs it with the case's attempts and requires that every one
 * was denied (probe exit 0), plus what the host can check from outside. */
#include "testlib.h"

#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOST_UID_A 100201
#define HOST_UID_B 100202

static const char *init_path, *probe_path;

static void start(struct sbs_conn *c, struct fixture *f)
{
    if (sbs_start(c, &f->spec) < 0) {
        fprintf(stderr, "sbs_start: %s\n", al_error_last());
        exit(1);
    }
    fixture_track(&c->rec);
}

/* Copies the probe into the workspace (owned by `uid`), with a git
 * repository and a dotenv file for the protections to apply to. Before the
 * session starts: protections are computed at start. */
static void prepare_ws(const struct fixture *f, uid_t uid)
{
    char dst[256], buf[65536];
    snprintf(dst, sizeof(dst), "%s/probe", f->ws);
    int in = open(probe_path, O_RDONLY | O_CLOEXEC);
    int out = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
    CHECK(in >= 0 && out >= 0);
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        CHECK(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
    CHECK(chown(dst, uid, uid) == 0);
    static const char *const dirs[] = {".git", ".git/hooks"};
    static const char *const files[] = {".git/config", ".bashrc", ".env", "secret"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(dst, sizeof(dst), "%s/%s", f->ws, dirs[i]);
        CHECK(mkdir(dst, 0755) == 0 && chown(dst, uid, uid) == 0);
    }
    for (size_t i = 0; i < 4; i++) {
        snprintf(dst, sizeof(dst), "%s/%s", f->ws, files[i]);
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && write(fd, "x\n", 2) == 2);
        close(fd);
        CHECK(chown(dst, uid, uid) == 0);
    }
}

/* Runs the probe with `args` (NULL-terminated, after the case name). */
static int probe(struct sbs_conn *c, char **args)
{
    char *argv[16] = {"/workspace/probe"};
    size_t n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    struct run_result r;
    if (run(c, argv, NULL, NULL, 30, &r) < 0 || r.spawn_err) {
        fprintf(stderr, "probe did not run (%d)\n", r.spawn_err);
        return -1;
    }
    if (r.out_len)
        fprintf(stderr, "%s", r.out);
    return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status);
}

static void session(struct fixture *f, struct sbs_conn *c, uid_t uid, int n)
{
    fixture_init(f, init_path, uid, n);
    prepare_ws(f, uid);
    start(c, f);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    if (geteuid() != 0)
        return 77;
    init_path = argv[1];
    probe_path = argv[2];
    const char *name = argv[3];
    struct fixture f;
    struct sbs_conn c;
    session(&f, &c, HOST_UID_A, 0);
    int rc;
    if (strcmp(name, "control_socket") == 0) {
        /* Neither the socket nor its directory exists inside; connecting
         * by path fails (and socket(AF_UNIX) is refused anyway). */
        char *args[] = {"hidden", f.sock, f.state, NULL};
        char *conn[] = {"connect", f.sock, NULL};
        rc = probe(&c, args) || probe(&c, conn);
    } else if (strcmp(name, "proc1_fd") == 0 || strcmp(name, "proc1_environ_maps") == 0) {
        char *args[] = {"proc1", NULL};
        rc = probe(&c, args);
    } else if (strcmp(name, "ptrace_init") == 0) {
        char *args[] = {"ptrace1", NULL};
        rc = probe(&c, args);
    } else if (strcmp(name, "pidfd_getfd_init") == 0) {
        char *args[] = {"pidfd_getfd1", NULL};
        rc = probe(&c, args);
    } else if (strcmp(name, "process_vm_readv_init") == 0) {
        char *args[] = {"vm1", NULL};
        rc = probe(&c, args);
    } else if (strcmp(name, "kill_init") == 0) {
        char *args[] = {"kill1", NULL};
        rc = probe(&c, args);
        /* init survived and still serves. */
        CHECK(kill(c.rec.init_pid, 0) == 0);
        CHECK(run_sh(&c, "exit 3", NULL) == 3);
    } else if (strcmp(name, "other_workspace") == 0) {
        struct fixture f2;
        struct sbs_conn c2;
        session(&f2, &c2, HOST_UID_B, 1);
        char *args[] = {"other_ws", f2.ws, NULL};
        rc = probe(&c, args);
        /* And the other way round. */
        char *back[] = {"other_ws", f.ws, NULL};
        rc = rc || probe(&c2, back);
        char planted[200];
        snprintf(planted, sizeof(planted), "%s/planted", f2.ws);
        CHECK(access(planted, F_OK) < 0);
        CHECK(sbs_destroy(&c2) == 0);
        fixture_free(&f2);
    } else if (strcmp(name, "workspace_escape") == 0) {
        char *args[] = {"escape", f.ws, NULL};
        rc = probe(&c, args);
        char path[200];
        snprintf(path, sizeof(path), "%s/../escape", f.ws);
        CHECK(access(path, F_OK) < 0);
    } else {
        fprintf(stderr, "unknown case %s\n", name);
        rc = 2;
    }
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
    return rc ? 1 : 0;
}
