/* sbs_bench: figures for long-lived sandboxes (run as root).
 *
 *   sbs_bench INIT_PATH [SANDBOXES [EXECS]]
 *   sbs_bench INIT_PATH idle N
 *
 * First form: starts SANDBOXES sandboxes one after the other; in each, runs
 * `true` EXECS times (spawn -> EXITED, stdio on /dev/null), then destroys
 * it. Prints p50/p99 of sbs_start, of create -> first exit, of one exec
 * round trip and of sbs_destroy, the idle RSS of one airlock-init, and as
 * a baseline for the machine's speed, posix_spawn(true) + waitpid on the
 * host, measured between the sandboxes' execs.
 * Second form: starts N sandboxes (memory limit 1 GiB, so each has a
 * memory cgroup), lets them idle, and prints the average RSS/PSS of their
 * inits and the average memory charged to their cgroups. */
#include "airlock/error.h"
#include "airlock/sandbox.h"
#include "airlock/sbsession.h"
#include "airlock/settings.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
    printf("%-34s n=%-5zu p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", what, n, v[n / 2], v[p99],
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

/* The value of the line starting with `key` in `path` (kB figures). */
static long proc_field(pid_t pid, const char *file, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "re");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, strlen(key)) == 0)
            kib = strtol(line + strlen(key), NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static long rss_kib(pid_t pid)
{
    return proc_field(pid, "status", "VmRSS:");
}

extern char **environ;

/* posix_spawn(true) + waitpid on the host, in ms. */
static double host_true(void)
{
    char *argv[] = {"true", NULL};
    double a = now_ms();
    pid_t pid;
    if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0)
        return -1;
    waitpid(pid, NULL, 0);
    return now_ms() - a;
}

/* Bytes charged to the memory cgroup of `rec` (v2 memory.current, v1
 * memory.usage_in_bytes); -1 when it has none. */
static long long cgroup_memory(const struct sbs_record *rec)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", rec->cgroup_paths[0],
             rec->cgroup_version == 2 ? "memory.current" : "memory.usage_in_bytes");
    FILE *f = fopen(path, "re");
    long long v = -1;
    if (f && fscanf(f, "%lld", &v) != 1)
        v = -1;
    if (f)
        fclose(f);
    return v;
}

/* Bytes charged to this process's own memory cgroup (v1 memory or v2),
 * -1 when unknown: what a sandbox's setup charges to its creator. */
static long long own_cgroup_memory(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[512], path[700] = "";
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "0::", 3) == 0 && !path[0])
            snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current", line + 3);
        char *m = strstr(line, ":memory:");
        if (m)
            snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", m + 8);
    }
    if (f)
        fclose(f);
    long long v = -1;
    f = path[0] ? fopen(path, "re") : NULL;
    if (f && fscanf(f, "%lld", &v) != 1)
        v = -1;
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: sbs_bench INIT_PATH [SANDBOXES [EXECS]] | INIT_PATH idle N\n");
        return 2;
    }
    int idle = argc > 3 && strcmp(argv[2], "idle") == 0;
    long n_sb = argc > 2 ? strtol(argv[idle ? 3 : 2], NULL, 10) : 50;
    long n_exec = argc > 3 && !idle ? strtol(argv[3], NULL, 10) : 20;
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
    double *host = calloc((size_t)(n_sb * n_exec), sizeof(double));
    struct sbs_conn *idle_conns = calloc((size_t)n_sb, sizeof(*idle_conns));
    size_t n_execs = 0, n_host = 0;
    long done = 0; /* sandboxes measured from start to destroy */
    int rc = 0;
    if (!start || !first || !destroy || !exec || !host || !idle_conns)
        return 1;
    long long own_before = own_cgroup_memory();
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
                                .host_gid = 100000,
                                .memory_mb = idle ? 1024 : 0};
        char sockn[200];
        if (idle) {
            snprintf(sockn, sizeof(sockn), "%s/ctl-%ld.sock", state, i);
            spec.control_path = sockn;
        }
        struct sbs_conn c;
        double t0 = now_ms();
        if (sbs_start(&c, &spec) < 0) {
            fprintf(stderr, "sbs_start: %s\n", al_error_last());
            rc = 1;
            break;
        }
        double t1 = now_ms();
        if (idle) {
            idle_conns[i] = c;
            continue;
        }
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
            double h = host_true();
            if (h >= 0)
                host[n_host++] = h;
        }
        if (i == 0) {
            usleep(100000);
            printf("idle airlock-init pid %d: VmRSS %ld KiB\n", (int)c.rec.init_pid,
                   rss_kib(c.rec.init_pid));
        }
        double t3 = now_ms();
        sbs_destroy(&c);
        destroy[i] = now_ms() - t3;
        done++;
    }
    if (idle && rc == 0) {
        sleep(1);
        long rss = 0, pss = 0, anon = 0;
        long long mem = 0;
        for (long i = 0; i < n_sb; i++) {
            rss += rss_kib(idle_conns[i].rec.init_pid);
            anon += proc_field(idle_conns[i].rec.init_pid, "status", "RssAnon:");
            pss += proc_field(idle_conns[i].rec.init_pid, "smaps_rollup", "Pss:");
            mem += cgroup_memory(&idle_conns[i].rec);
        }
        long long own = own_cgroup_memory();
        printf("%ld idle sandboxes: per airlock-init RSS %ld KiB, anonymous %ld KiB, PSS %ld "
               "KiB; per sandbox memory cgroup charge %lld KiB, plus %lld KiB charged to the "
               "creator's cgroup during setup\n",
               n_sb, rss / n_sb, anon / n_sb, pss / n_sb, mem / n_sb / 1024,
               own >= 0 && own_before >= 0 ? (own - own_before) / n_sb / 1024 : -1);
    }
    for (long i = 0; idle && i < n_sb; i++)
        if (idle_conns[i].fd > 0)
            sbs_destroy(&idle_conns[i]);
    if (idle)
        goto out;
    /* only the sandboxes that went all the way (none when the first
     * sbs_start failed: no table of zeros) */
    report("sbs_start", start, (size_t)done);
    report("create -> first exit", first, (size_t)done);
    report("exec round trip (true)", exec, n_execs);
    report("sbs_destroy", destroy, (size_t)done);
    report("host posix_spawn(true) (baseline)", host, n_host);
out:
    free(start);
    free(first);
    free(destroy);
    free(exec);
    free(host);
    free(idle_conns);
    rmdir(ws);
    rmdir(state);
    rmdir(base);
    al_policy_free(&pol);
    return rc;
}
