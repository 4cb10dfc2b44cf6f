/* sbs_bench: figures for long-lived sandboxes (run as root).
 *
 *   sbs_bench INIT_PATH [SANDBOXES [EXECS]]
 *
 * Starts SANDBOXES sandboxes one after the other; in each, runs `true`
 * EXECS times (spawn -> EXITED, stdio on /dev/null), then destroys it.
 * Prints p50/p99 of sbs_start, of create -> first exit, of one exec round
 * trip and of sbs_destroy, and the idle RSS of one airlock-init. */
#include "airlock/error.h"
#include "airlock/sandbox.h"
#include "airlock/sbsession.h"
#include "airlock/settings.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, size_t n)
{
    if (!n)
        return;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t p99 = (n * 99) / 100;
    if (p99 >= n)
        p99 = n - 1;
    printf("%-28s n=%-5zu p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", what, n, v[n / 2], v[p99],
           v[n - 1]);
}

/* Runs `true` and waits for its EXITED. */
static int run_true(struct sbs_conn *c, int devnull, uint32_t req)
{
    char *argv[] = {"true", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct sbs_cmd cmd = {.argv = argv, .envp = envp, .stdio = {devnull, devnull, devnull}};
    if (sbs_spawn_send(c, req, &cmd) < 0)
        return -1;
    struct sbs_msg m;
    for (;;) {
        if (sbs_recv(c, &m) < 0)
            return -1;
        if (m.type == SBS_MSG_SPAWN_FAILED)
            return -1;
        if (m.type == SBS_MSG_EXITED)
            return m.status == 0 ? 0 : -1;
    }
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: sbs_bench INIT_PATH [SANDBOXES [EXECS]]\n");
        return 2;
    }
    long n_sb = argc > 2 ? strtol(argv[2], NULL, 10) : 50;
    long n_exec = argc > 3 ? strtol(argv[3], NULL, 10) : 20;
    if (n_sb < 1 || n_exec < 1)
        return 2;
    char base[] = "/var/tmp/sbs-bench-XXXXXX";
    if (!mkdtemp(base))
        return 1;
    char ws[128], state[128], sock[160];
    snprintf(ws, sizeof(ws), "%s/ws", base);
    snprintf(state, sizeof(state), "%s/state", base);
    snprintf(sock, sizeof(sock), "%s/ctl.sock", state);
    mkdir(ws, 0755);
    mkdir(state, 0700);
    if (chown(ws, 100000, 100000) < 0)
        return 1;
    struct al_policy pol;
    al_policy_init(&pol);
    sb_policy_add_defaults(&pol, ws, NULL);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

    double *start = calloc((size_t)n_sb, sizeof(double));
    double *first = calloc((size_t)n_sb, sizeof(double));
    double *destroy = calloc((size_t)n_sb, sizeof(double));
    double *exec = calloc((size_t)(n_sb * n_exec), sizeof(double));
    size_t n_execs = 0;
    int rc = 0;
    for (long i = 0; i < n_sb && rc == 0; i++) {
        char cgname[64];
        snprintf(cgname, sizeof(cgname), "sbs-bench-%d-%ld", (int)getpid(), i);
        struct sbs_spec spec = {.policy = &pol,
                                .workspace = ws,
                                .workspace_mount = "/workspace",
                                .control_path = sock,
                                .cgroup_name = cgname,
                                .init_path = argv[1],
                                .host_uid = 100000,
                                .host_gid = 100000};
        struct sbs_conn c;
        double t0 = now_ms();
        if (sbs_start(&c, &spec) < 0) {
            fprintf(stderr, "sbs_start: %s\n", al_error_last());
            rc = 1;
            break;
        }
        double t1 = now_ms();
        if (run_true(&c, devnull, 0) < 0) {
            fprintf(stderr, "first exec failed\n");
            rc = 1;
        }
        double t2 = now_ms();
        start[i] = t1 - t0;
        first[i] = t2 - t0;
        for (long j = 1; j < n_exec && rc == 0; j++) {
            double a = now_ms();
            if (run_true(&c, devnull, (uint32_t)j) < 0)
                rc = 1;
            exec[n_execs++] = now_ms() - a;
        }
        if (i == 0) {
            usleep(100000);
            printf("idle airlock-init pid %d: VmRSS %ld KiB\n", (int)c.rec.init_pid,
                   rss_kib(c.rec.init_pid));
        }
        double t3 = now_ms();
        sbs_destroy(&c);
        destroy[i] = now_ms() - t3;
    }
    report("sbs_start", start, (size_t)n_sb);
    report("create -> first exit", first, (size_t)n_sb);
    report("exec round trip (true)", exec, n_execs);
    report("sbs_destroy", destroy, (size_t)n_sb);
    rmdir(ws);
    rmdir(state);
    rmdir(base);
    al_policy_free(&pol);
    return rc;
}
