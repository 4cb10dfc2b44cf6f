/* airlock doctor: runs, inside the sandbox the settings describe, the checks a
 * careful user would script by hand, and prints one PASS/FAIL line each. */
#include "cli.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"
#include "airlock/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DOCTOR_MAX_SOCKETS 16

struct doctor_ctx {
    const char *home;
    const char *cwd;
    struct al_strlist sockets; /* host unix socket paths found before */
    struct al_strlist secrets; /* host credential files that exist */
};

static int failures;

static void verdict(int pass, const char *check, const char *what)
{
    printf("%s  %-32s %s\n", pass ? "PASS" : "FAIL", check, what);
    failures += !pass;
}

static void check_write_outside(const struct doctor_ctx *c)
{
    const char *dirs[] = {"/usr", "/etc", c->home, "/"};
    char what[1024] = "", path[PATH_MAX];
    int pass = 1;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        if (al_path_within(c->cwd, dirs[i]) && strcmp(dirs[i], "/") && strcmp(c->cwd, dirs[i]) == 0)
            continue;
        if (al_path_join(path, sizeof(path), dirs[i], ".airlock-doctor-probe") < 0)
            continue;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        size_t len = strlen(what);
        if (fd >= 0) {
            close(fd);
            unlink(path);
            pass = 0;
            snprintf(what + len, sizeof(what) - len, "%s WRITABLE; ", dirs[i]);
        } else {
            snprintf(what + len, sizeof(what) - len, "%s: %s; ", dirs[i], strerror(errno));
        }
    }
    verdict(pass, "write outside the workspace", what);
}

static void check_read_secrets(const struct doctor_ctx *c)
{
    char what[2048] = "";
    int pass = 1, readable = 0;
    for (size_t i = 0; i < c->secrets.len; i++) {
        const char *p = c->secrets.items[i];
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        char b;
        if (fd >= 0 && read(fd, &b, 1) == 1) {
            pass = 0;
            readable++;
            size_t len = strlen(what);
            snprintf(what + len, sizeof(what) - len, "%s READABLE; ", p);
        }
        if (fd >= 0)
            close(fd);
    }
    if (pass)
        snprintf(what, sizeof(what), "%zu credential file(s) on the host, none readable",
                 c->secrets.len);
    verdict(pass, "read credential stores", what);
}

static int try_connect(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, sa, len);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof(err);
        if (poll(&p, 1, 2000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0)
            rc = err ? (errno = err, -1) : 0;
        else
            rc = (errno = ETIMEDOUT, -1);
    }
    int e = errno;
    close(fd);
    return rc == 0 ? 0 : -e;
}

static void check_network(void)
{
    char what[512];
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(443)};
    inet_pton(AF_INET, "1.1.1.1", &v4.sin_addr);
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    inet_pton(AF_INET6, "2606:4700:4700::1111", &v6.sin6_addr);
    int r4 = try_connect((struct sockaddr *)&v4, sizeof(v4));
    int r6 = try_connect((struct sockaddr *)&v6, sizeof(v6));
    struct addrinfo *ai = NULL;
    int dns = getaddrinfo("example.com", "443", NULL, &ai);
    if (ai)
        freeaddrinfo(ai);
    snprintf(what, sizeof(what), "1.1.1.1:443 %s; [2606:4700:4700::1111]:443 %s; DNS %s",
             r4 ? strerror(-r4) : "CONNECTED", r6 ? strerror(-r6) : "CONNECTED",
             dns ? gai_strerror(dns) : "RESOLVED");
    verdict(r4 != 0 && r6 != 0 && dns != 0, "reach a host that is not allowed", what);
}

static void check_unix_sockets(const struct doctor_ctx *c)
{
    char what[1024];
    int reached = 0;
    size_t tried = 0;
    for (size_t i = 0; i < c->sockets.len; i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(c->sockets.items[i]) >= sizeof(sa.sun_path))
            continue;
        memcpy(sa.sun_path, c->sockets.items[i], strlen(c->sockets.items[i]) + 1);
        tried++;
        if (try_connect((struct sockaddr *)&sa, sizeof(sa)) == 0)
            reached++;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int e = errno;
    if (fd >= 0)
        close(fd);
    snprintf(what, sizeof(what), "%zu host socket(s) tried, %d reached; socket(AF_UNIX): %s", tried,
             reached, fd >= 0 ? "allowed" : strerror(e));
    verdict(reached == 0, "reach a host unix socket", what);
}

static void check_privileges(void)
{
    char what[512] = "";
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    int caps_zero = 1, nnp = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Cap", 3) == 0) {
            char *colon = strchr(line, ':');
            if (colon && strtoull(colon + 1, NULL, 16) != 0)
                caps_zero = 0;
        }
        if (strncmp(line, "NoNewPrivs:", 11) == 0)
            nnp = (int)strtol(line + 11, NULL, 10);
    }
    if (f)
        fclose(f);
    int un = unshare(CLONE_NEWUSER);
    int un_errno = errno;
    int mnt = mount("none", "/tmp", "tmpfs", 0, NULL);
    int mnt_errno = errno;
    snprintf(what, sizeof(what), "capabilities %s; NoNewPrivs %d; unshare(user) %s; mount %s",
             caps_zero ? "all 0" : "PRESENT", nnp, un == 0 ? "ALLOWED" : strerror(un_errno),
             mnt == 0 ? "ALLOWED" : strerror(mnt_errno));
    verdict(caps_zero && nnp == 1 && un != 0 && mnt != 0, "gain privileges", what);
}

static void check_processes(void)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] >= '1' && de->d_name[0] <= '9';
    if (d)
        closedir(d);
    char what[128];
    snprintf(what, sizeof(what), "%d process(es) visible in /proc", n);
    verdict(n > 0 && n <= 4, "see host processes", what);
}

static int doctor_probe(void *payload)
{
    const struct doctor_ctx *c = payload;
    check_write_outside(c);
    check_read_secrets(c);
    check_network();
    check_unix_sockets(c);
    check_privileges();
    check_processes();
    fflush(stdout);
    return failures ? 1 : 0;
}

/* Host unix sockets with a path, from /proc/net/unix (the host's view). */
static void collect_sockets(struct al_strlist *out)
{
    FILE *f = fopen("/proc/net/unix", "re");
    char line[1024];
    while (f && fgets(line, sizeof(line), f) && out->len < DOCTOR_MAX_SOCKETS) {
        char *p = strchr(line, '/');
        if (!p)
            continue;
        p[strcspn(p, "\n")] = '\0';
        struct stat st;
        if (stat(p, &st) == 0 && S_ISSOCK(st.st_mode))
            al_strlist_push_unique(out, p);
    }
    if (f)
        fclose(f);
}

/* Credential files that exist on the host: each denied file, and the files
 * directly inside each denied directory. */
static void collect_secrets(struct al_strlist *out, const struct al_policy *policy)
{
    for (size_t i = 0; i < policy->deny_read.len; i++) {
        const char *p = policy->deny_read.items[i];
        struct stat st;
        if (strpbrk(p, "*?[") || stat(p, &st) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            al_strlist_push_unique(out, p);
            continue;
        }
        DIR *d = S_ISDIR(st.st_mode) ? opendir(p) : NULL;
        struct dirent *de;
        char child[PATH_MAX];
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.' || al_path_join(child, sizeof(child), p, de->d_name) < 0)
                continue;
            if (stat(child, &st) == 0 && S_ISREG(st.st_mode))
                al_strlist_push_unique(out, child);
        }
        if (d)
            closedir(d);
    }
}

int cmd_doctor(int argc, char **argv)
{
    struct cli_settings_opts so = {AL_STRLIST_INIT, NULL};
    struct al_policy policy;
    struct doctor_ctx ctx = {0};
    int rc = 125, c;
    static const struct option longopts[] = {
        {"settings", required_argument, NULL, 's'},
        {"env", required_argument, NULL, 'e'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    al_policy_init(&policy);
    optind = 1;
    opterr = 0;
    /* ":" first: a missing value is ':', an unknown option '?' */
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 's') {
            al_strlist_push(&so.files, optarg);
        } else if (c == 'e') {
            so.env_name = optarg;
        } else if (c == 'd') {
            al_log_set_level(AL_LOG_DEBUG);
        } else if (c == 'h') {
            puts("usage: airlock doctor [--settings FILE]... [--env NAME] [--debug]\n"
                 "Runs isolation checks inside the sandbox the settings describe;\n"
                 "exit 0 only if every check passes.");
            rc = 0;
            goto out;
        } else if (c == ':') {
            fprintf(
                stderr,
                "airlock doctor: %s needs a value (%s)\n(airlock doctor --help for the usage)\n",
                argv[optind - 1],
                strcmp(argv[optind - 1], "--env") == 0 ? "a settings name" : "a settings file");
            goto out;
        } else {
            fprintf(
                stderr,
                "airlock doctor: unknown option \"%s\"\n(airlock doctor --help for the usage)\n",
                argv[optind - 1]);
            goto out;
        }
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd))) {
        fprintf(stderr, "airlock: cannot read the working directory: %s\n", strerror(errno));
        goto out;
    }
    ctx.home = cli_home();
    ctx.cwd = cwd;
    if (cli_policy_load(&policy, NULL, &so, cwd, ctx.home) < 0)
        goto out;
    collect_sockets(&ctx.sockets);
    collect_secrets(&ctx.secrets, &policy);
    char *argv_doctor[] = {"airlock-doctor", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct sb_config cfg = {
        .policy = &policy,
        .cwd = cwd,
        .home = ctx.home,
        .argv = argv_doctor,
        .envp = envp,
        .inner = doctor_probe,
        .inner_payload = &ctx,
    };
    struct sb_result res;
    fflush(stdout);
    int err = sb_run(&res, &cfg);
    if (err == AL_EUNSUPP && policy.weaker_nested) {
        printf("note: namespaces unavailable; checking the weaker sandbox\n");
        fflush(stdout);
        err = sb_run_weaker(&res, &cfg);
    }
    if (err < 0) {
        fprintf(stderr, "airlock: sandbox could not be built: %s\n", al_error_last());
        goto out;
    }
    rc = sb_result_exit_status(&res);
    printf("%s\n", rc == 0 ? "all checks passed" : "some checks FAILED");
out:
    al_strlist_free(&ctx.sockets);
    al_strlist_free(&ctx.secrets);
    al_strlist_free(&so.files);
    al_policy_free(&policy);
    return rc;
}
