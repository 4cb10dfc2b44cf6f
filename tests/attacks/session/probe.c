/* sbs_probe: runs inside a long-lived sandbox and tries one thing; exits 0
 * when every attempt came out as the case expects (attacks: denied), 1
 * otherwise, with a line on stderr per surprise. Static, so it also runs in
 * a sandbox whose / is a bare rootfs.
 *
 *   sbs_probe CASE [ARGS...]   (cases below, in main) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void fail(const char *what, const char *arg)
{
    fprintf(stderr, "sbs_probe: NOT DENIED: %s %s\n", what, arg ? arg : "");
    failures++;
}

static int do_cat(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (write(1, buf, (size_t)n) != n)
            return 1;
    close(fd);
    return 0;
}

static void absent(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 || (errno != ENOENT && errno != EACCES))
        fail("exists", path);
}

/* Absent, or an empty directory (a hidden directory). */
static void hidden(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        absent(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            fail("hidden dir lists", de->d_name);
    closedir(d);
}

static void denied_write(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        fail("write", path);
        close(fd);
    }
}

static void proc1(void)
{
    static const char *const files[] = {"/proc/1/environ", "/proc/1/maps",   "/proc/1/mem",
                                        "/proc/1/smaps",   "/proc/1/stack",  "/proc/1/syscall",
                                        "/proc/1/auxv",    "/proc/1/pagemap"};
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
        int fd = open(files[i], O_RDONLY | O_CLOEXEC);
        char c;
        if (fd >= 0 && read(fd, &c, 1) >= 0)
            fail("read", files[i]);
        if (fd >= 0)
            close(fd);
    }
    DIR *d = opendir("/proc/1/fd");
    if (d) {
        if (readdir(d))
            fail("list", "/proc/1/fd");
        closedir(d);
    }
    static const char *const links[] = {"/proc/1/root", "/proc/1/cwd", "/proc/1/exe"};
    char buf[256], path[64];
    for (size_t i = 0; i < sizeof(links) / sizeof(*links); i++)
        if (readlink(links[i], buf, sizeof(buf)) >= 0)
            fail("readlink", links[i]);
    for (int fd = 0; fd < 16; fd++) {
        snprintf(path, sizeof(path), "/proc/1/fd/%d", fd);
        if (readlink(path, buf, sizeof(buf)) >= 0)
            fail("readlink", path);
        int o = open(path, O_RDWR | O_CLOEXEC);
        if (o >= 0 || (errno != EACCES && errno != ENOENT && errno != EPERM)) {
            fail("open", path);
            if (o >= 0)
                close(o);
        }
    }
}

static void ptrace1(void)
{
    if (ptrace(PTRACE_ATTACH, 1, NULL, NULL) == 0)
        fail("ptrace attach", "1");
    if (ptrace(PTRACE_SEIZE, 1, NULL, NULL) == 0)
        fail("ptrace seize", "1");
}

static void pidfd_getfd1(void)
{
    int pfd = (int)syscall(SYS_pidfd_open, 1, 0);
    if (pfd < 0)
        return; /* denied already */
    for (int fd = 0; fd < 64; fd++) {
        int got = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
        if (got >= 0) {
            fail("pidfd_getfd", "1");
            close(got);
        }
    }
    close(pfd);
}

static void vm1(void)
{
    char local[64], remote_addr[64];
    struct iovec l = {local, sizeof(local)}, r = {remote_addr, sizeof(remote_addr)};
    /* Our own stack address is as good a guess as any: any success counts. */
    if (syscall(SYS_process_vm_readv, 1, &l, 1, &r, 1, 0) >= 0)
        fail("process_vm_readv", "1");
    if (syscall(SYS_process_vm_writev, 1, &l, 1, &r, 1, 0) >= 0)
        fail("process_vm_writev", "1");
}

static void kill1(void)
{
    int sigs[] = {SIGKILL, SIGTERM, SIGSTOP, SIGSEGV, SIGINT, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
        kill(1, sigs[i]);
    kill(-1, SIGKILL); /* everything we may signal (never pid 1 nor us) */
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
}

static void connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return; /* seccomp: no unix sockets */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        fail("connect", path);
    close(fd);
}

/* Ways out of the workspace mount. `host_ws` is its host path. */
static void escape(const char *host_ws)
{
    denied_write("/workspace/../etc/passwd");
    denied_write("/workspace/../escape");
    if (mkdir("/workspace/../escape-dir", 0755) == 0)
        fail("mkdir", "/escape-dir");
    if (rename("/workspace", "/tmp/moved") == 0)
        fail("rename", "/workspace");
    if (rmdir("/workspace") == 0)
        fail("rmdir", "/workspace");
    if (umount2("/workspace", MNT_DETACH) == 0)
        fail("umount", "/workspace");
    if (mount("/tmp", "/workspace", NULL, MS_BIND, NULL) == 0)
        fail("mount", "/workspace");
    if (symlink("/etc", "/workspace/etc-link") == 0)
        denied_write("/workspace/etc-link/escape");
    if (link("/etc/passwd", "/workspace/passwd-link") == 0)
        fail("hard link", "/etc/passwd");
    if (rename("/workspace/.", "/workspace/../x") == 0)
        fail("rename", "/workspace/.");
    /* The host copy of the workspace is not reachable. */
    char p[512];
    snprintf(p, sizeof(p), "%s/escape", host_ws);
    denied_write(p);
    DIR *d = opendir(host_ws);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            fail("host copy of the workspace lists", de->d_name);
    if (d)
        closedir(d);
    /* Protected files stay protected inside the workspace mount. */
    denied_write("/workspace/.git/hooks/pre-commit");
    denied_write("/workspace/.git/config");
    denied_write("/workspace/.bashrc");
    int env = open("/workspace/.env", O_RDONLY | O_CLOEXEC);
    if (env >= 0) {
        fail("read", "/workspace/.env");
        close(env);
    }
}

/* Another session's workspace, by its host path. */
static void other_ws(const char *path)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/secret", path);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fail("read", p);
        close(fd);
    }
    snprintf(p, sizeof(p), "%s/planted", path);
    denied_write(p);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            fail("lists", de->d_name);
    if (d)
        closedir(d);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *c = argv[1];
    if (strcmp(c, "cat") == 0 && argc == 3)
        return do_cat(argv[2]);
    if (strcmp(c, "write") == 0 && argc == 3) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        return fd < 0;
    }
    if (strcmp(c, "absent") == 0)
        for (int i = 2; i < argc; i++)
            absent(argv[i]);
    else if (strcmp(c, "hidden") == 0)
        for (int i = 2; i < argc; i++)
            hidden(argv[i]);
    else if (strcmp(c, "denied-write") == 0)
        for (int i = 2; i < argc; i++)
            denied_write(argv[i]);
    else if (strcmp(c, "proc1") == 0)
        proc1();
    else if (strcmp(c, "ptrace1") == 0)
        ptrace1();
    else if (strcmp(c, "pidfd_getfd1") == 0)
        pidfd_getfd1();
    else if (strcmp(c, "vm1") == 0)
        vm1();
    else if (strcmp(c, "kill1") == 0)
        kill1();
    else if (strcmp(c, "connect") == 0 && argc == 3)
        connect_unix(argv[2]);
    else if (strcmp(c, "escape") == 0 && argc == 3)
        escape(argv[2]);
    else if (strcmp(c, "other_ws") == 0 && argc == 3)
        other_ws(argv[2]);
    else
        return 2;
    return failures ? 1 : 0;
}
