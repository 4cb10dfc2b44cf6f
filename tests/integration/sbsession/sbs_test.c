/* Long-lived sandboxes (sbs_start & co.) against real sandboxes, as root:
 *
 *   sbs_test AIRLOCK_INIT CASE
 *
 * One ctest per case (label "sandbox"). Each case exits 0 on success, 1
 * with a message on failure. */
#include "testlib.h"

#include "airlock/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOST_UID  100123
#define HOST_UID2 100124

static const char *init_path;

/* A shell condition retried for up to 10 s (the kernel and init finish
 * killing and reaping asynchronously); the script fails if it never
 * holds. Not a timing assertion: the bound only ends a failing test. */
#define WAIT_UNTIL(cond)                                                                           \
    "i=0; until " cond "; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done"

/* 1 when `s` starts with a number <= max. */
static int atoi_safe_le(const char *s, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && v <= max;
}

static void start(struct sbs_conn *c, struct fixture *f)
{
    if (sbs_start(c, &f->spec) < 0) {
        fprintf(stderr, "sbs_start: %s\n", al_error_last());
        exit(1);
    }
    fixture_track(&c->rec);
}

static void case_output(void)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, HOST_UID, 0);
    start(&c, &f);
    char *argv[] = {"echo", "hello", "world", NULL};
    CHECK(run(&c, argv, NULL, NULL, 0, &r) == 0);
    CHECK(r.spawn_err == 0 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    CHECK(strcmp(r.out, "hello world\n") == 0);
    /* stderr goes where the daemon said; stdin is what it passed. */
    CHECK(run_sh(&c, "echo err >&2; cat", &r) == 0 && strcmp(r.out, "err\n") == 0);
    /* The command inherits no descriptor of init's: ls sees 0-2 and its
     * own directory. */
    CHECK(run_sh(&c, "ls /proc/self/fd", &r) == 0);
    CHECK(strcmp(r.out, "0\n1\n2\n3\n") == 0);
    /* Large arguments (close to SBS_MAX_MSG), then one too large. */
    char *big1 = malloc(100001), *big2 = malloc(100001);
    CHECK(big1 && big2);
    memset(big1, 'a', 100000);
    memset(big2, 'b', 100000);
    big1[100000] = big2[100000] = '\0';
    char *large[] = {"sh", "-c", "echo $((${#1} + ${#2}))", "sh", big1, big2, NULL};
    CHECK(run(&c, large, NULL, NULL, 0, &r) == 0 && r.status == 0);
    CHECK(strcmp(r.out, "200000\n") == 0);
    char *huge[] = {"true", big1, big2, big1, NULL};
    CHECK(run(&c, huge, NULL, NULL, 0, &r) < 0 && strstr(al_error_last(), "exceed"));
    free(big1);
    free(big2);
    CHECK(run_sh(&c, "exit 1", NULL) == 1);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

static void case_exit_codes(void)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, HOST_UID, 0);
    start(&c, &f);
    CHECK(run_sh(&c, "exit 3", NULL) == 3);
    CHECK(run_sh(&c, "exit 0", NULL) == 0);
    CHECK(run_sh(&c, "kill -9 $$", &r) == 128 + 9);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL && !r.timed_out);
    char *missing[] = {"no-such-command-here", NULL};
    CHECK(run(&c, missing, NULL, NULL, 0, &r) == 0 && r.spawn_err == ENOENT);
    char *abs_missing[] = {"/workspace/nothing", NULL};
    CHECK(run(&c, abs_missing, NULL, NULL, 0, &r) == 0 && r.spawn_err == ENOENT);
    CHECK(run_sh(&c, "printf 'x' > /workspace/noexec; chmod 644 /workspace/noexec", NULL) == 0);
    char *noexec[] = {"/workspace/noexec", NULL};
    CHECK(run(&c, noexec, NULL, NULL, 0, &r) == 0 && r.spawn_err == EACCES);
    /* a missing cwd is told apart from a missing command */
    char *bad_cwd[] = {"true", NULL};
    CHECK(run(&c, bad_cwd, NULL, "/workspace/missing-dir", 0, &r) == 0 &&
          r.spawn_err == SBS_SPAWN_ERR_CWD + ENOENT);
    /* The session still serves after failures. */
    CHECK(run_sh(&c, "exit 5", NULL) == 5);
    /* Orphans are reaped by init: no zombie stays. */
    CHECK(run_sh(&c, "exec >/dev/null 2>&1; (sleep 0.2 &); (true &); exit 0", NULL) == 0);
    CHECK(run_sh(&c, WAIT_UNTIL("! ps -eo stat= | grep -q Z") " || ps -eo pid,stat,args", &r) == 0);
    CHECK(r.out_len == 0);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

static void case_signal(void)
{
    struct fixture f;
    struct sbs_conn c;
    fixture_init(&f, init_path, HOST_UID, 0);
    start(&c, &f);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* A shell with a child: the signal reaches the whole process group. */
    char *argv[] = {"sh", "-c", "sleep 100; echo not reached", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct sbs_cmd cmd = {.argv = argv, .envp = envp, .stdio = {null, null, null}};
    CHECK(sbs_spawn_send(&c, 42, &cmd) == 0);
    struct sbs_msg m;
    CHECK(wait_msg(&c, SBS_MSG_SPAWNED, 42, &m) == 0 && m.type == SBS_MSG_SPAWNED);
    CHECK(m.pid > 1);
    uint32_t proc = m.proc;
    CHECK(sbs_signal_send(&c, proc, SIGTERM) == 0);
    CHECK(wait_msg(&c, SBS_MSG_EXITED, proc, &m) == 0);
    CHECK(WIFSIGNALED(m.status) && WTERMSIG(m.status) == SIGTERM && !m.timed_out);
    /* No sleep left behind. */
    CHECK(run_sh(&c, WAIT_UNTIL("! pgrep -x sleep"), NULL) == 0);
    /* A signal to an ended process is ignored. */
    CHECK(sbs_signal_send(&c, proc, SIGKILL) == 0);
    CHECK(sbs_signal_send(&c, 999999, SIGKILL) == 0);
    CHECK(run_sh(&c, "exit 7", NULL) == 7);
    close(null);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

static void case_timeout(void)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, HOST_UID, 0);
    start(&c, &f);
    char *argv[] = {"sh", "-c", "sleep 100 & sleep 100", NULL};
    CHECK(run(&c, argv, NULL, NULL, 1, &r) == 0);
    CHECK(r.timed_out == 1 && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
    CHECK(run_sh(&c, WAIT_UNTIL("! pgrep -x sleep"), NULL) == 0);
    /* A command that ends in time is not marked. */
    char *quick[] = {"true", NULL};
    CHECK(run(&c, quick, NULL, NULL, 5, &r) == 0 && r.timed_out == 0 && r.status == 0);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

static void case_env_cwd(void)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, HOST_UID, 0);
    /* spec->hide: the scratch dir (holding the workspace) is not visible,
     * the workspace still is at its mount point. */
    char secret[128];
    snprintf(secret, sizeof(secret), "%s/secret", f.base);
    int fd = open(secret, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    close(fd);
    const char *hide[] = {f.base};
    f.spec.hide = hide;
    f.spec.n_hide = 1;
    start(&c, &f);
    char script[256];
    snprintf(script, sizeof(script), "test -d %s && test ! -e %s && test -w /workspace", f.base,
             secret);
    CHECK(run_sh(&c, script, NULL) == 0);
    CHECK(run_sh(&c, "mkdir -p /workspace/sub", NULL) == 0);
    char *argv[] = {"sh", "-c", "echo \"$FOO|$HOME\"; pwd; env | wc -l", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "FOO=bar baz", "HOME=/workspace", NULL};
    CHECK(run(&c, argv, envp, "/workspace/sub", 0, &r) == 0 && r.status == 0);
    /* sh adds PWD (and maybe SHLVL, _): nothing of init's or the daemon's. */
    CHECK(strncmp(r.out, "bar baz|/workspace\n/workspace/sub\n", 34) == 0);
    CHECK(atoi_safe_le(r.out + 34, 6));
    CHECK(run(&c, argv, envp, NULL, 0, &r) == 0 && strstr(r.out, "\n/workspace\n"));
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

static void case_uid_owner(void)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, HOST_UID, 0);
    start(&c, &f);
    CHECK(run_sh(&c, "id -u; id -g; id -G", &r) == 0);
    CHECK(strcmp(r.out, "1000\n1000\n1000\n") == 0);
    CHECK(run_sh(&c, "echo data > /workspace/file && mkdir /workspace/dir", NULL) == 0);
    char path[160];
    struct stat st;
    snprintf(path, sizeof(path), "%s/file", f.ws);
    CHECK(stat(path, &st) == 0 && st.st_uid == HOST_UID && st.st_gid == HOST_UID);
    snprintf(path, sizeof(path), "%s/dir", f.ws);
    CHECK(stat(path, &st) == 0 && st.st_uid == HOST_UID);
    /* Host files keep their owners' names only where mapped: root's are
     * root's; nothing inside runs as root. */
    CHECK(run_sh(&c, "test \"$(stat -c %u /usr/bin)\" = 0", NULL) == 0);
    CHECK(run_sh(&c, "grep -q '^CapEff:.0000000000000000' /proc/self/status", NULL) == 0);
    CHECK(run_sh(&c, "grep -q '^NoNewPrivs:.1' /proc/self/status", NULL) == 0);
    CHECK(run_sh(&c, "grep -q '^Seccomp:.2' /proc/self/status", NULL) == 0);
    CHECK(run_sh(&c, "test \"$(hostname)\" = airlock", NULL) == 0);
    /* Its cgroup is the root of its cgroup namespace (in every hierarchy). */
    CHECK(run_sh(&c, "cat /proc/self/cgroup; ! grep -v ':/$' /proc/self/cgroup >&2", NULL) == 0);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

/* host_uid 0: the caller's own ids, mapped 1:1 (as `airlock run` does). */
static void case_caller_ids(void)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, 0, 0);
    start(&c, &f);
    char want[64];
    snprintf(want, sizeof(want), "%u\n%u\n", (unsigned)getuid(), (unsigned)getgid());
    CHECK(run_sh(&c, "id -u; id -g", &r) == 0 && strcmp(r.out, want) == 0);
    CHECK(run_sh(&c, "grep -q '^CapEff:.0000000000000000' /proc/self/status", NULL) == 0);
    CHECK(run_sh(&c, "echo x > /workspace/f", NULL) == 0);
    char path[160];
    struct stat st;
    snprintf(path, sizeof(path), "%s/f", f.ws);
    CHECK(stat(path, &st) == 0 && st.st_uid == getuid());
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

/* Many commands at once: all spawned before any is waited for. */
static void case_concurrent(void)
{
    enum { N = 40 };
    struct fixture f;
    struct sbs_conn c;
    fixture_init(&f, init_path, HOST_UID, 0);
    start(&c, &f);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    int pipes[N][2];
    uint32_t procs[N] = {0};
    int exited[N] = {0};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    for (int i = 0; i < N; i++) {
        char script[64];
        snprintf(script, sizeof(script), "sleep 0.$((%d %% 3)); echo %d; exit %d", i, i, i);
        char *argv[] = {"sh", "-c", script, NULL};
        CHECK(pipe2(pipes[i], O_CLOEXEC) == 0);
        struct sbs_cmd cmd = {.argv = argv, .envp = envp, .stdio = {null, pipes[i][1], null}};
        CHECK(sbs_spawn_send(&c, (uint32_t)(1000 + i), &cmd) == 0);
        close(pipes[i][1]);
    }
    int spawned = 0, done = 0;
    while (done < N) {
        struct sbs_msg m;
        struct pollfd p = {c.fd, POLLIN, 0};
        CHECK(poll(&p, 1, 30000) == 1);
        CHECK(sbs_recv(&c, &m) == 0);
        if (m.type == SBS_MSG_SPAWNED) {
            CHECK(m.req >= 1000 && m.req < 1000 + N);
            procs[m.req - 1000] = m.proc;
            spawned++;
        } else if (m.type == SBS_MSG_EXITED) {
            int i = -1;
            for (int k = 0; k < N; k++)
                if (procs[k] == m.proc && !exited[k])
                    i = k;
            if (i < 0 || !WIFEXITED(m.status) || WEXITSTATUS(m.status) != i)
                fprintf(stderr, "proc %u: index %d status %#x\n", m.proc, i, m.status);
            CHECK(i >= 0 && WIFEXITED(m.status) && WEXITSTATUS(m.status) == i);
            exited[i] = 1;
            done++;
        } else {
            CHECK(!"unexpected message");
        }
    }
    CHECK(spawned == N);
    for (int i = 0; i < N; i++) {
        char buf[16] = {0}, want[16];
        CHECK(read(pipes[i][0], buf, sizeof(buf) - 1) > 0);
        snprintf(want, sizeof(want), "%d\n", i);
        CHECK(strcmp(buf, want) == 0);
        close(pipes[i][0]);
    }
    close(null);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

/* The sandbox outlives the process that started it; a later process
 * attaches, receives the exit that happened meanwhile, and runs commands. */
static void case_survive_creator(void)
{
    struct fixture f;
    fixture_init(&f, init_path, HOST_UID, 0);
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct sbs_conn c;
        start(&c, &f);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        char *argv[] = {"sh", "-c", "sleep 0.5; exit 9", NULL};
        char *envp[] = {"PATH=/usr/bin:/bin", NULL};
        struct sbs_cmd cmd = {.argv = argv, .envp = envp, .stdio = {null, null, null}};
        struct sbs_msg m;
        CHECK(sbs_spawn_send(&c, 1, &cmd) == 0);
        CHECK(wait_msg(&c, SBS_MSG_SPAWNED, 1, &m) == 0 && m.type == SBS_MSG_SPAWNED);
        struct {
            struct sbs_record rec;
            uint32_t proc;
        } out = {c.rec, m.proc};
        CHECK(write(p[1], &out, sizeof(out)) == (ssize_t)sizeof(out));
        _exit(0); /* no destroy: the sandbox must stay */
    }
    close(p[1]);
    struct {
        struct sbs_record rec;
        uint32_t proc;
    } got;
    CHECK(read(p[0], &got, sizeof(got)) == (ssize_t)sizeof(got));
    fixture_track(&got.rec);
    int st;
    CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(kill(got.rec.init_pid, 0) == 0);
    /* Its own session, outside its creator's process group. */
    CHECK(getsid(got.rec.init_pid) == got.rec.init_pid && getpgid(got.rec.init_pid) != getpgrp());
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL); /* the command ends while nobody is connected */
    struct sbs_conn c;
    CHECK(sbs_attach(&c, &got.rec) == 0);
    struct sbs_msg m;
    CHECK(wait_msg(&c, SBS_MSG_EXITED, got.proc, &m) == 0);
    CHECK(WIFEXITED(m.status) && WEXITSTATUS(m.status) == 9);
    CHECK(run_sh(&c, "exit 4", NULL) == 4);
    /* A second connection replaces the first. */
    struct sbs_conn c2;
    CHECK(sbs_attach(&c2, &got.rec) == 0);
    CHECK(run_sh(&c2, "exit 6", NULL) == 6);
    struct pollfd pf = {c.fd, POLLIN, 0};
    CHECK(poll(&pf, 1, 5000) == 1 && sbs_recv(&c, &m) == AL_EIO);
    close(c.fd);
    free(c.rbuf);
    /* A record whose start time does not match is refused. */
    struct sbs_record wrong = got.rec;
    wrong.init_start_time++;
    struct sbs_conn c3;
    CHECK(sbs_attach(&c3, &wrong) == AL_ENOTFOUND);
    CHECK(sbs_destroy(&c2) == 0);
    CHECK(sbs_attach(&c3, &got.rec) == AL_ENOTFOUND);
    CHECK(sbs_destroy_record(&got.rec) == 0); /* again: nothing left, no error */
    fixture_free(&f);
}

/* 1 when a process on the host is in the pid namespace `ns` (a link name
 * such as "pid:[4026532]"). */
static int pidns_has_process(const char *ns)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int found = 0;
    while (d && (de = readdir(d))) {
        char path[300], link[64];
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        found |= strcmp(link, ns) == 0;
    }
    if (d)
        closedir(d);
    return found;
}

static int mounts_mention(const char *what)
{
    FILE *m = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    int found = 0;
    while (m && fgets(line, sizeof(line), m))
        found |= strstr(line, what) != NULL;
    if (m)
        fclose(m);
    return found;
}

static void case_destroy_leaves_nothing(void)
{
    struct fixture f;
    struct sbs_conn c;
    fixture_init(&f, init_path, HOST_UID, 0);
    f.spec.memory_mb = 256;
    f.spec.pids = 64;
    start(&c, &f);
    /* Background processes, double-forked daemons, a process that ignores
     * SIGTERM: all must go. */
    CHECK(run_sh(&c,
                 "exec >/dev/null 2>&1; (sleep 1000 &); (trap '' TERM; sleep 1000) & "
                 "sleep 1000 & exit 0",
                 NULL) == 0);
    char path[64], ns[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)c.rec.init_pid);
    ssize_t n = readlink(path, ns, sizeof(ns) - 1);
    CHECK(n > 0);
    ns[n] = '\0';
    CHECK(pidns_has_process(ns));
    struct sbs_record rec = c.rec;
    struct stat st;
    for (int i = 0; i < 3; i++)
        CHECK(!rec.cgroup_paths[i][0] || stat(rec.cgroup_paths[i], &st) == 0);
    CHECK(stat(f.sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK(sbs_destroy(&c) == 0);
    CHECK(!pidns_has_process(ns));
    CHECK(kill(rec.init_pid, 0) < 0 && errno == ESRCH); /* reaped too */
    for (int i = 0; i < 3; i++)
        CHECK(!rec.cgroup_paths[i][0] || (stat(rec.cgroup_paths[i], &st) < 0 && errno == ENOENT));
    CHECK(stat(f.sock, &st) < 0 && errno == ENOENT);
    CHECK(!mounts_mention(f.base));
    fixture_free(&f);
}

/* A failed start leaves nothing either: a missing init binary. */
static void case_start_failure(void)
{
    struct fixture f;
    struct sbs_conn c;
    fixture_init(&f, "/nonexistent/airlock-init", HOST_UID, 0);
    CHECK(sbs_start(&c, &f.spec) < 0 && c.fd == -1);
    struct stat st;
    CHECK(stat(f.sock, &st) < 0 && errno == ENOENT);
    /* The cgroup name is free again: a real start under it works. */
    f.spec.init_path = init_path;
    start(&c, &f);
    /* The same name twice is refused, and leaves the first alone. */
    struct sbs_conn c2;
    struct fixture f2;
    fixture_init(&f2, init_path, HOST_UID, 1);
    snprintf(f2.cgname, sizeof(f2.cgname), "%s", f.cgname);
    CHECK(sbs_start(&c2, &f2.spec) == AL_EEXISTS);
    CHECK(run_sh(&c, "exit 2", NULL) == 2);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
    fixture_free(&f2);
}

/* spec->rootfs: / is that directory, read-only. */
static void case_rootfs(const char *probe)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, HOST_UID, 0);
    char root[128], bin[160], marker[160], cmd[512];
    snprintf(root, sizeof(root), "%s/rootfs", f.base);
    snprintf(bin, sizeof(bin), "%s/bin", root);
    snprintf(marker, sizeof(marker), "%s/marker", root);
    CHECK(mkdir(root, 0755) == 0 && mkdir(bin, 0755) == 0);
    snprintf(cmd, sizeof(cmd), "%s/probe", bin);
    int in = open(probe, O_RDONLY | O_CLOEXEC), out = open(cmd, O_WRONLY | O_CREAT, 0755);
    CHECK(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        CHECK(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
    int m = open(marker, O_WRONLY | O_CREAT, 0644);
    CHECK(m >= 0 && write(m, "rootfs\n", 7) == 7);
    close(m);
    f.spec.rootfs = root;
    start(&c, &f);
    char *envp[] = {"PATH=/bin", NULL};
    char *cat[] = {"probe", "cat", "/marker", NULL};
    CHECK(run(&c, cat, envp, NULL, 0, &r) == 0 && r.spawn_err == 0 && r.status == 0);
    CHECK(strcmp(r.out, "rootfs\n") == 0);
    /* No host system dir, / read-only, the workspace writable. */
    char *ls[] = {"probe", "absent", "/usr", "/etc/passwd", NULL};
    CHECK(run(&c, ls, envp, NULL, 0, &r) == 0 && r.status == 0);
    char *wr[] = {"probe", "denied-write", "/marker", "/newfile", "/bin/probe", NULL};
    CHECK(run(&c, wr, envp, NULL, 0, &r) == 0 && r.status == 0);
    char *ok[] = {"probe", "write", "/workspace/ok", NULL};
    CHECK(run(&c, ok, envp, NULL, 0, &r) == 0 && r.status == 0);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

/* A command over the memory limit is killed by the kernel, the session
 * survives, and sbs_oom_killed() says so. */
static void case_oom(void)
{
    struct fixture f;
    struct sbs_conn c;
    struct run_result r;
    fixture_init(&f, init_path, HOST_UID, 0);
    f.spec.memory_mb = 48;
    start(&c, &f);
    CHECK(sbs_oom_killed(&c.rec) == 0);
    char *argv[] = {"dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1", NULL};
    CHECK(run(&c, argv, NULL, NULL, 30, &r) == 0 && r.spawn_err == 0);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL && !r.timed_out);
    CHECK(sbs_oom_killed(&c.rec) == 1);
    CHECK(run_sh(&c, "exit 8", NULL) == 8);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

/* sbs_start from several threads at once, while another thread keeps
 * malloc busy: the sandboxes' pid 1 (a clone of a threaded process) must
 * neither deadlock nor fail. */
static atomic_int churn_stop;

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = malloc((size_t)(16 + i * 97));
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    return NULL;
}

static void *starter(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int round = 0; round < 3; round++) {
        struct fixture f;
        struct sbs_conn c;
        struct run_result r;
        fixture_init(&f, init_path, HOST_UID + (uid_t)n, 10 * n + round);
        start(&c, &f);
        char script[64];
        snprintf(script, sizeof(script), "echo %d-%d", n, round);
        char want[32];
        snprintf(want, sizeof(want), "%d-%d\n", n, round);
        CHECK(run_sh(&c, script, &r) == 0 && strcmp(r.out, want) == 0);
        CHECK(sbs_destroy(&c) == 0);
        fixture_free(&f);
    }
    return NULL;
}

static void case_threads(void)
{
    pthread_t ch, st[3];
    CHECK(pthread_create(&ch, NULL, churn, NULL) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&st[i], NULL, starter, (void *)(intptr_t)(i + 1)) == 0);
    for (int i = 0; i < 3; i++)
        pthread_join(st[i], NULL);
    atomic_store(&churn_stop, 1);
    pthread_join(ch, NULL);
}

/* Sends `argv` with a watch socket; returns our end of it. */
static int spawn_watched(struct sbs_conn *c, uint32_t req, char *const *argv, int out_fd)
{
    static char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(null >= 0);
    struct sbs_cmd cmd = {
        .argv = argv, .envp = env, .stdio = {null, out_fd, out_fd}, .watch = 1, .watch_fd = sv[1]};
    CHECK(sbs_spawn_send(c, req, &cmd) == 0);
    close(null);
    close(sv[1]);
    return sv[0];
}

/* Waits for the next message on a watch socket. */
static int watch_next(int fd, struct sbs_msg *m)
{
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 30000) == 1);
    return sbs_watch_recv(fd, m);
}

/* SPAWN_WATCHED: the command's SPAWNED and EXITED arrive on its watch
 * socket as well as on the control socket, the same messages; a failed
 * spawn sends SPAWN_FAILED there; init closes the socket after the last
 * word; a command never sees the socket; a daemon that dropped its end
 * harms nothing. */
static void case_watch(void)
{
    struct fixture f;
    struct sbs_conn c;
    fixture_init(&f, init_path, HOST_UID, 0);
    start(&c, &f);
    CHECK(sbs_conn_can_watch(&c));
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    char *argv[] = {"sh", "-c", "ls /proc/self/fd; exit 7", NULL};
    int w = spawn_watched(&c, 500, argv, p[1]);
    close(p[1]);
    struct sbs_msg m, ctl;
    CHECK(watch_next(w, &m) == 0 && m.type == SBS_MSG_SPAWNED && m.req == 500 && m.pid > 0);
    CHECK(wait_msg(&c, SBS_MSG_SPAWNED, 500, &ctl) == 0 && ctl.type == SBS_MSG_SPAWNED);
    CHECK(ctl.proc == m.proc && ctl.pid == m.pid);
    char out[256] = "";
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    CHECK(n > 0);
    out[n] = '\0';
    close(p[0]);
    CHECK(strcmp(out, "0\n1\n2\n3\n") == 0); /* 3: ls's own directory */
    uint32_t proc = m.proc;
    CHECK(watch_next(w, &m) == 0 && m.type == SBS_MSG_EXITED && m.proc == proc);
    CHECK(WIFEXITED(m.status) && WEXITSTATUS(m.status) == 7);
    CHECK(wait_msg(&c, SBS_MSG_EXITED, proc, &ctl) == 0 && ctl.status == m.status);
    CHECK(watch_next(w, &m) == AL_EIO); /* closed after the exit */
    close(w);

    /* a failed spawn: SPAWN_FAILED, then the end */
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    char *missing[] = {"no-such-command-here", NULL};
    w = spawn_watched(&c, 501, missing, p[1]);
    close(p[1]);
    close(p[0]);
    CHECK(watch_next(w, &m) == 0 && m.type == SBS_MSG_SPAWN_FAILED && m.err == ENOENT);
    CHECK(wait_msg(&c, SBS_MSG_SPAWNED, 501, &ctl) == 0 && ctl.type == SBS_MSG_SPAWN_FAILED);
    CHECK(watch_next(w, &m) == AL_EIO);
    close(w);

    /* the daemon's end is gone before the exit: init carries on */
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    char *quick[] = {"sh", "-c", "exit 4", NULL};
    w = spawn_watched(&c, 502, quick, p[1]);
    close(p[1]);
    close(p[0]);
    close(w);
    CHECK(wait_msg(&c, SBS_MSG_SPAWNED, 502, &ctl) == 0 && ctl.type == SBS_MSG_SPAWNED);
    CHECK(wait_msg(&c, SBS_MSG_EXITED, ctl.proc, &ctl) == 0 && WEXITSTATUS(ctl.status) == 4);
    CHECK(run_sh(&c, "exit 5", NULL) == 5);
    CHECK(sbs_destroy(&c) == 0);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sbs_test AIRLOCK_INIT CASE [PROBE]\n");
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "needs root\n");
        return 77;
    }
    init_path = argv[1];
    const char *name = argv[2];
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {
        {"output", case_output},
        {"exit_codes", case_exit_codes},
        {"signal", case_signal},
        {"timeout", case_timeout},
        {"env_cwd", case_env_cwd},
        {"uid_owner", case_uid_owner},
        {"concurrent", case_concurrent},
        {"survive_creator", case_survive_creator},
        {"destroy_leaves_nothing", case_destroy_leaves_nothing},
        {"start_failure", case_start_failure},
        {"threads", case_threads},
        {"oom", case_oom},
        {"caller_ids", case_caller_ids},
        {"watch", case_watch},
    };
    if (strcmp(name, "rootfs") == 0 && argc > 3) {
        case_rootfs(argv[3]);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        if (strcmp(cases[i].name, name) == 0) {
            cases[i].fn();
            return 0;
        }
    }
    fprintf(stderr, "unknown case %s\n", name);
    return 2;
}
