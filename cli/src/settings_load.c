/* Layered settings for `airlock run` and `airlock doctor`. */
#include "cli.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"
#include "airlock/sandbox.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <fcntl.h>

const char *cli_home(void)
{
    const char *h = getenv("HOME");
    if (h && h[0] == '/')
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

/* $AIRLOCK_CONFIG_DIR, else $XDG_CONFIG_HOME/airlock, else ~/.config/airlock. */
static char *config_dir(const char *home)
{
    const char *d = getenv("AIRLOCK_CONFIG_DIR");
    if (d && *d)
        return strdup(d);
    char buf[PATH_MAX];
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/')
        snprintf(buf, sizeof(buf), "%s/airlock", xdg);
    else
        snprintf(buf, sizeof(buf), "%s/.config/airlock", home);
    return strdup(buf);
}

/* Loads one file; a missing optional file is skipped. */
static int load_one(struct al_policy *policy, const char *path, int required, const char *home,
                    const char *cwd)
{
    int err = al_settings_load_file(policy, path, home, cwd);
    if (err == AL_ENOTFOUND && !required)
        return 0;
    if (err < 0) {
        if (err == AL_ENOTFOUND)
            fprintf(stderr, "airlock: %s: no such settings file\n", path);
        else
            fprintf(stderr, "airlock: %s\n", al_error_last());
        return err;
    }
    al_log(AL_LOG_DEBUG, "settings: loaded %s", path);
    return 0;
}

static int load_in_dir(struct al_policy *policy, const char *dir, const char *name, int required,
                       const char *home, const char *cwd)
{
    char path[PATH_MAX];
    if (al_path_join(path, sizeof(path), dir, name) < 0) {
        fprintf(stderr, "airlock: %s: path too long\n", dir);
        return AL_ETOOBIG;
    }
    return load_one(policy, path, required, home, cwd);
}

int cli_policy_load(struct al_policy *policy, char **out_dir, const struct cli_settings_opts *opts,
                    const char *cwd, const char *home)
{
    int err = 0;
    char *dir = NULL;
    char env_file[NAME_MAX];
    if (opts->env_name) {
        const char *e = opts->env_name;
        if (!*e || strchr(e, '/') || strcmp(e, ".") == 0 || strcmp(e, "..") == 0 ||
            strlen(e) > 100) {
            fprintf(stderr, "airlock: --env: \"%s\" is not a valid environment name\n", e);
            return AL_EINVAL;
        }
        snprintf(env_file, sizeof(env_file), "settings.%s.json", e);
    }
    if (opts->files.len) {
        /* Explicit files in order; --env layers on from the last one's folder. */
        for (size_t i = 0; i < opts->files.len && err == 0; i++)
            err = load_one(policy, opts->files.items[i], 1, home, cwd);
        char *last = al_settings_expand_path(opts->files.items[opts->files.len - 1], home, cwd);
        if (!last)
            return AL_ENOMEM;
        char *slash = strrchr(last, '/');
        int last_is_local = strcmp(slash + 1, "settings.local.json") == 0;
        if (slash == last)
            slash[1] = '\0';
        else
            *slash = '\0';
        dir = last;
        if (err == 0 && opts->env_name)
            err = load_in_dir(policy, dir, env_file, 1, home, cwd);
        /* settings.local.json beside the last file last (where "always"
         * answers go), unless that file is the one just loaded. */
        if (err == 0 && !last_is_local)
            err = load_in_dir(policy, dir, "settings.local.json", 0, home, cwd);
    } else {
        dir = config_dir(home);
        if (!dir)
            return AL_ENOMEM;
        err = load_in_dir(policy, dir, "settings.json", 0, home, cwd);
        if (err == 0 && opts->env_name)
            err = load_in_dir(policy, dir, env_file, 1, home, cwd);
        if (err == 0)
            err = load_in_dir(policy, dir, "settings.local.json", 0, home, cwd);
    }
    /* what only the layered whole can tell (a mask without tlsTerminate,
     * injectHosts outside allowedDomains, ...): refused before anything runs */
    if (err == 0 && (err = al_policy_check_credentials(policy)) < 0)
        fprintf(stderr, "airlock: %s\n", al_error_last());
    for (size_t i = 0; err == 0 && i < policy->warnings.len; i++)
        fprintf(stderr, "airlock: warning: %s\n", policy->warnings.items[i]);
    if (err == 0 && (err = sb_policy_add_defaults(policy, cwd, home)) < 0)
        fprintf(stderr, "airlock: %s\n", al_error_last());
    if (err == 0 && out_dir)
        *out_dir = dir;
    else
        free(dir);
    return err;
}

int cli_ask_yes_no(const char *question)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    dprintf(fd, "%s [y/N] ", question);
    char answer[16] = {0};
    ssize_t n = read(fd, answer, sizeof(answer) - 1);
    close(fd);
    return n > 0 && (answer[0] == 'y' || answer[0] == 'Y');
}
