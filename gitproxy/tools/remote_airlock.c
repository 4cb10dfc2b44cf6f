/* git-remote-airlock: the remote helper of repositories in airlockd
 * sessions, so that `git remote -v` shows the real URL while git talks to
 * the session's git listener.
 *
 *   git-remote-airlock REMOTE URL      (run by git for remote.REMOTE.vcs=airlock)
 *
 * A URL "https://HOST/PATH" whose HOST is in $AIRLOCK_GIT_HOSTS becomes
 * "$AIRLOCK_GIT_PROXY/HOST/PATH" and is handed to `git remote-http`; any
 * other https URL goes unchanged to `git remote-https` (and so through the
 * egress proxy); anything else is refused with one line on stderr and exit
 * status 128. git then speaks the remote-helper protocol with the helper
 * exec'd here on the same stdin/stdout. Links nothing but libc: it runs
 * inside sandboxes, bound read-only by airlockd. */
#include "airlock/gp_remote_url.h"
#include "airlock/version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN 256

static const char *env_or_empty(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

/* A remote name git may pass: 1-256 printable bytes other than space. */
static int name_valid(const char *name)
{
    size_t n = strnlen(name, NAME_MAX_LEN + 1);
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] <= 0x20 || name[i] >= 0x7f)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("git-remote-airlock " AL_VERSION_LINE);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs("usage: git-remote-airlock REMOTE URL\n"
              "\n"
              "An internal helper, not a command to run: git runs it for a remote with\n"
              "remote.REMOTE.vcs=airlock in an airlockd session, and it hands the URL\n"
              "(rewritten to the session's git proxy for $AIRLOCK_GIT_HOSTS) to\n"
              "git remote-http or git remote-https.\n",
              stdout);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "git-remote-airlock: %s\n",
                argc == 2 ? "the remote has no URL (set remote.<name>.url)"
                          : "usage: git-remote-airlock REMOTE URL (run by git)");
        return 128;
    }
    if (!name_valid(argv[1])) {
        fputs("git-remote-airlock: malformed remote name\n", stderr);
        return 128;
    }
    const char *url = argv[2], *proxy = env_or_empty("AIRLOCK_GIT_PROXY"),
               *hosts = env_or_empty("AIRLOCK_GIT_HOSTS");
    size_t url_len = strnlen(url, GP_REMOTE_URL_MAX + 1);
    char out[GP_REMOTE_URL_MAX + 512];
    enum gp_remote_route route;
    const char *why;
    if (gp_remote_url_rewrite(out, sizeof(out), &route, &why, url, url_len, proxy,
                              strnlen(proxy, 512), hosts,
                              strnlen(hosts, GP_REMOTE_HOSTS_MAX + 1)) < 0) {
        fprintf(stderr, "git-remote-airlock: %s\n", why);
        return 128;
    }
    char *args[] = {"git", route == GP_REMOTE_PROXY ? "remote-http" : "remote-https", argv[1], out,
                    NULL};
    execvp("git", args);
    fprintf(stderr, "git-remote-airlock: cannot run git %s: %s\n", args[1], strerror(errno));
    return 128;
}
