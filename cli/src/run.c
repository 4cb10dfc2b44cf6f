/* airlock run: one command in a sandbox. */
#include "cli.h"
#include "run_hints.h"
#include "run_network.h"
#include "run_prompt.h"
#include "run_pty.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/sandbox.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_AIRLOCK 125

extern char **environ;

struct run_opts {
    struct cli_settings_opts settings;
    struct al_strlist allow_write, deny_read, pass_env, hosts;
    const char *shell_string, *decision_log;
    int debug, print_policy, unsandboxed, yes, no_pty;
    unsigned long timeout_s, memory_mb, pids, ask_timeout_s;
    double cpus;
};

static void run_usage(FILE *f)
{
    fputs("usage: airlock run [options] (-c 'SHELL STRING' | [--] COMMAND [ARG...])\n"
          "\n"
          "  --settings FILE      settings file (repeatable; later ones override)\n"
          "  --env NAME           also settings.NAME.json and settings.local.json\n"
          "  --allow-write PATH   make PATH writable (repeatable)\n"
          "  --deny-read PATTERN  hide PATTERN (repeatable; globs * and **)\n"
          "  --pass-env NAME      pass the variable NAME in (repeatable)\n"
          "  --add-host NAME=IP   the egress proxy resolves NAME to IP (repeatable)\n"
          "  --timeout SECONDS    kill the whole sandbox after SECONDS (exit 124)\n"
          "  --memory MB          memory limit (exit 137 when hit)\n"
          "  --pids N             process limit\n"
          "  --cpus N             CPU limit in cores (e.g. 0.5)\n"
          "  --print-policy       print the effective policy as JSON and exit\n"
          "  --unsandboxed        run without the sandbox (if allowUnsandboxedCommands)\n"
          "  --yes                do not ask in mode \"regular\"\n"
          "  --ask-timeout SECONDS  a network question waits this long (default 60)\n"
          "  --no-pty             no terminal of the sandbox's own: the command gets\n"
          "                       airlock's stdin/stdout/stderr as they are\n"
          "  --decision-log FILE  the network decision records as JSON lines to FILE\n"
          "                       (\"-\": stderr, in place of the blocked-network lines)\n"
          "  --debug              log every step\n"
          "\n"
          "exit status: the command's; 128+N if killed by signal N; 124 timeout;\n"
          "125 airlock error; 126 not executable; 127 not found\n",
          f);
}

/* Parses a decimal number in [min, max]; 0 on success. */
static int parse_ulong(unsigned long *out, const char *opt, const char *s, unsigned long min,
                       unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "airlock: %s: \"%s\" is not a number between %lu and %lu\n", opt, s, min,
                max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_opts(struct run_opts *o, int argc, char **argv, int *cmd_index)
{
    enum {
        O_SETTINGS = 256,
        O_ENV,
        O_DEBUG,
        O_PRINT,
        O_ALLOW_WRITE,
        O_DENY_READ,
        O_PASS_ENV,
        O_TIMEOUT,
        O_MEMORY,
        O_PIDS,
        O_CPUS,
        O_UNSANDBOXED,
        O_YES,
        O_HELP,
        O_ADD_HOST,
        O_ASK_TIMEOUT,
        O_NO_PTY,
        O_DECISION_LOG
    };
    static const struct option longopts[] = {
        {"settings", required_argument, NULL, O_SETTINGS},
        {"env", required_argument, NULL, O_ENV},
        {"debug", no_argument, NULL, O_DEBUG},
        {"print-policy", no_argument, NULL, O_PRINT},
        {"allow-write", required_argument, NULL, O_ALLOW_WRITE},
        {"deny-read", required_argument, NULL, O_DENY_READ},
        {"pass-env", required_argument, NULL, O_PASS_ENV},
        {"add-host", required_argument, NULL, O_ADD_HOST},
        {"decision-log", required_argument, NULL, O_DECISION_LOG},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"memory", required_argument, NULL, O_MEMORY},
        {"pids", required_argument, NULL, O_PIDS},
        {"cpus", required_argument, NULL, O_CPUS},
        {"unsandboxed", no_argument, NULL, O_UNSANDBOXED},
        {"yes", no_argument, NULL, O_YES},
        {"ask-timeout", required_argument, NULL, O_ASK_TIMEOUT},
        {"no-pty", no_argument, NULL, O_NO_PTY},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    /* what each option's value is, for "--X needs a value (...)" */
    static const char *const value_of[][2] = {
        {"--settings", "a settings file"},
        {"--env", "a settings name"},
        {"--allow-write", "a path"},
        {"--deny-read", "a path or pattern"},
        {"--pass-env", "a variable name"},
        {"--add-host", "NAME=IP"},
        {"--decision-log", "a file, or - for stderr"},
        {"--timeout", "seconds"},
        {"--memory", "megabytes"},
        {"--pids", "a number of processes"},
        {"--cpus", "a number of cores"},
        {"--ask-timeout", "seconds"},
        {"-c", "a shell string"},
    };
    int c, err = 0;
    opterr = 0;
    optind = 1;
    /* "+": options end at the first non-option (the command); ":": a
     * missing value is ':', not '?'. */
    while ((c = getopt_long(argc, argv, "+:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_SETTINGS:
            err = al_strlist_push(&o->settings.files, optarg);
            break;
        case O_ENV:
            o->settings.env_name = optarg;
            break;
        case O_DEBUG:
            o->debug = 1;
            break;
        case O_PRINT:
            o->print_policy = 1;
            break;
        case O_ALLOW_WRITE:
            err = al_strlist_push(&o->allow_write, optarg);
            break;
        case O_DENY_READ:
            err = al_strlist_push(&o->deny_read, optarg);
            break;
        case O_PASS_ENV:
            err = al_strlist_push(&o->pass_env, optarg);
            break;
        case O_ADD_HOST:
            err = al_strlist_push(&o->hosts, optarg);
            break;
        case O_DECISION_LOG:
            o->decision_log = optarg;
            break;
        case O_TIMEOUT:
            err = parse_ulong(&o->timeout_s, "--timeout", optarg, 1, 365UL * 86400);
            break;
        case O_MEMORY:
            err = parse_ulong(&o->memory_mb, "--memory", optarg, 4, 1UL << 30);
            break;
        case O_PIDS:
            err = parse_ulong(&o->pids, "--pids", optarg, 1, 1UL << 22);
            break;
        case O_CPUS: {
            char *end;
            o->cpus = strtod(optarg, &end);
            if (end == optarg || *end || !(o->cpus >= 0.01 && o->cpus <= 4096)) {
                fprintf(stderr, "airlock: --cpus: \"%s\" is not a number of cores\n", optarg);
                err = -1;
            }
            break;
        }
        case O_UNSANDBOXED:
            o->unsandboxed = 1;
            break;
        case O_YES:
            o->yes = 1;
            break;
        case O_ASK_TIMEOUT:
            err = parse_ulong(&o->ask_timeout_s, "--ask-timeout", optarg, 1, 86400);
            break;
        case O_NO_PTY:
            o->no_pty = 1;
            break;
        case 'c':
            o->shell_string = optarg;
            break;
        case 'h':
        case O_HELP:
            run_usage(stdout);
            exit(0);
        case ':': {
            /* argv[optind - 1] is the option (--opt or -c) */
            const char *opt = argv[optind - 1], *what = "a value";
            for (size_t i = 0; i < sizeof(value_of) / sizeof(value_of[0]); i++)
                if (strcmp(opt, value_of[i][0]) == 0)
                    what = value_of[i][1];
            fprintf(stderr, "airlock run: %s needs a value (%s)\n", opt, what);
            run_usage(stderr);
            return -1;
        }
        default:
            if (optopt && optopt < 256)
                fprintf(stderr, "airlock run: unknown option \"-%c\"\n", optopt);
            else
                fprintf(stderr, "airlock run: unknown option \"%s\"\n", argv[optind - 1]);
            run_usage(stderr);
            return -1;
        }
        if (err)
            return -1;
    }
    if (!o->settings.env_name) {
        const char *e = getenv("AIRLOCK_ENV");
        if (e && *e)
            o->settings.env_name = e;
    }
    *cmd_index = optind;
    if (!o->print_policy && !o->shell_string && optind >= argc) {
        fprintf(stderr, "airlock: run: no command given\n");
        run_usage(stderr);
        return -1;
    }
    if (o->shell_string && optind < argc) {
        fprintf(stderr, "airlock: run: give either -c 'STRING' or a command, not both\n");
        return -1;
    }
    return 0;
}

/* The sandbox's environment: PATH HOME TERM LANG USER, --pass-env names,
 * SANDBOX_RUNTIME=1. Never the dynamic loader's injection variables. */
static int build_env(struct al_strlist *env, const struct run_opts *o,
                     const struct al_policy *policy, const char *home)
{
    static const char *const kept[] = {"TERM", "LANG", "USER", "LOGNAME", "LC_ALL", "TZ"};
    char buf[8192];
    const char *path = getenv("PATH");
    snprintf(buf, sizeof(buf), "PATH=%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (al_strlist_push(env, buf) < 0)
        return -1;
    snprintf(buf, sizeof(buf), "HOME=%s", home);
    if (al_strlist_push(env, buf) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(kept) / sizeof(*kept); i++) {
        const char *v = getenv(kept[i]);
        if (v && snprintf(buf, sizeof(buf), "%s=%s", kept[i], v) < (int)sizeof(buf) &&
            al_strlist_push(env, buf) < 0)
            return -1;
    }
    for (size_t i = 0; i < o->pass_env.len; i++) {
        const char *name = o->pass_env.items[i];
        if (strncmp(name, "LD_", 3) == 0 || strchr(name, '=') || !*name) {
            fprintf(stderr,
                    "airlock: --pass-env %s: refused (the dynamic loader's variables "
                    "never enter the sandbox)\n",
                    name);
            return -1;
        }
        if (al_strlist_find(&policy->deny_env, name) >= 0) {
            fprintf(stderr,
                    "airlock: --pass-env %s: refused by the settings' denied "
                    "environment variables\n",
                    name);
            return -1;
        }
        int masked = 0;
        for (size_t m = 0; m < policy->n_mask_env && !masked; m++)
            masked = strcmp(policy->mask_env[m].name, name) == 0;
        if (masked) {
            fprintf(stderr,
                    "airlock: --pass-env %s: refused: the settings mask it (%scredentials.envVars, "
                    "mode \"mask\"): the sandbox gets a sentinel, never the value\n",
                    name, policy->key_prefix);
            return -1;
        }
        const char *v = getenv(name);
        if (!v)
            continue;
        int n = snprintf(buf, sizeof(buf), "%s=%s", name, v);
        if (n < 0 || (size_t)n >= sizeof(buf)) {
            fprintf(stderr, "airlock: --pass-env %s: value too long\n", name);
            return -1;
        }
        if (al_strlist_push(env, buf) < 0)
            return -1;
    }
    return al_strlist_push(env, "SANDBOX_RUNTIME=1");
}

/* The name excludedCommands is matched against: argv[0]'s basename, or the
 * first word of a -c string. */
static void command_name(char *out, size_t size, char *const *argv, const char *shell_string)
{
    const char *s = shell_string ? shell_string : argv[0];
    if (shell_string) {
        s += strspn(s, " \t\n");
        size_t n = strcspn(s, " \t\n;&|<>()");
        snprintf(out, size, "%.*s", (int)n, s);
    } else {
        snprintf(out, size, "%s", s);
    }
    char *slash = strrchr(out, '/');
    if (slash)
        memmove(out, slash + 1, strlen(slash + 1) + 1);
}

static int run_unsandboxed(char *const *argv, const char *why)
{
    fprintf(stderr, "airlock: warning: running %s OUTSIDE the sandbox (%s)\n", argv[0], why);
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "airlock: %s: %s\n", argv[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}

static int report(const struct sb_result *r, const struct sb_config *cfg)
{
    switch (r->outcome) {
    case SB_TIMED_OUT:
        fprintf(stderr, "airlock: timed out after %u s: killed the whole sandbox\n",
                cfg->timeout_s);
        break;
    case SB_MEMORY_OOM:
        fprintf(stderr, "airlock: killed: memory limit of %llu MiB reached (--memory)\n",
                (unsigned long long)cfg->memory_mb);
        break;
    case SB_NOT_FOUND:
        fprintf(stderr, "airlock: %s\n", al_error_last());
        break;
    case SB_NOT_EXEC:
        fprintf(stderr, "airlock: %s\n", al_error_last());
        break;
    default:
        break;
    }
    return sb_result_exit_status(r);
}

static void run_opts_free(struct run_opts *o)
{
    al_strlist_free(&o->settings.files);
    al_strlist_free(&o->allow_write);
    al_strlist_free(&o->deny_read);
    al_strlist_free(&o->pass_env);
    al_strlist_free(&o->hosts);
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o = {0};
    struct al_policy policy;
    struct al_strlist env = AL_STRLIST_INIT;
    char *settings_dir = NULL;
    char cwd[PATH_MAX];
    struct run_network net = {0};
    run_pty *pty = NULL;
    static const uint16_t proxy_ports[] = {RUN_NET_HTTP_PORT, RUN_NET_SOCKS_PORT};
    int cmd_index = 0, rc = EXIT_AIRLOCK;
    al_policy_init(&policy);

    if (parse_opts(&o, argc, argv, &cmd_index) < 0)
        goto out;
    if (o.debug)
        al_log_set_level(AL_LOG_DEBUG);
    if (!getcwd(cwd, sizeof(cwd))) {
        fprintf(stderr, "airlock: cannot read the working directory: %s\n", strerror(errno));
        goto out;
    }
    const char *home = cli_home();
    if (cli_policy_load(&policy, &settings_dir, &o.settings, cwd, home) < 0)
        goto out;
    for (size_t i = 0; i < o.allow_write.len; i++) {
        char *p = al_settings_expand_path(o.allow_write.items[i], home, cwd);
        if (!p || al_strlist_push_owned(&policy.allow_write, p) < 0) {
            fprintf(stderr, "airlock: --allow-write %s: %s\n", o.allow_write.items[i],
                    al_error_last());
            goto out;
        }
    }
    for (size_t i = 0; i < o.deny_read.len; i++) {
        char *p = al_settings_expand_path(o.deny_read.items[i], home, cwd);
        if (!p || al_strlist_push_owned(&policy.deny_read, p) < 0) {
            fprintf(stderr, "airlock: --deny-read %s: %s\n", o.deny_read.items[i], al_error_last());
            goto out;
        }
    }
    if (o.print_policy) {
        char *json = al_policy_to_json(&policy);
        if (!json)
            goto out;
        puts(json);
        free(json);
        rc = 0;
        goto out;
    }

    char *shell_argv[] = {"/bin/sh", "-c", (char *)o.shell_string, NULL};
    char *const *cmd = o.shell_string ? shell_argv : argv + cmd_index;

    char name[256];
    command_name(name, sizeof(name), cmd, o.shell_string);
    int excluded = al_strlist_find(&policy.excluded_commands, name) >= 0;
    if (excluded || o.unsandboxed) {
        const char *why = o.unsandboxed ? "--unsandboxed" : "listed in sandbox.excludedCommands";
        if (!policy.allow_unsandboxed) {
            fprintf(stderr,
                    "airlock: refusing to run %s outside the sandbox: it is %s, but "
                    "sandbox.allowUnsandboxedCommands is false\n",
                    name, why);
            goto out;
        }
        rc = run_unsandboxed(cmd, why);
        goto out;
    }

    if (policy.mode == AL_MODE_REGULAR && !o.yes) {
        /* The whole command, as a shell would take it back, safe to show. */
        char shown[400], question[512];
        size_t words = 0;
        while (cmd[words])
            words++;
        run_prompt_quote(shown, sizeof(shown), (const char *const *)cmd, words);
        snprintf(question, sizeof(question), "airlock: run %s in the sandbox?", shown);
        int yes = cli_ask_yes_no(question);
        if (yes < 0) {
            fprintf(stderr, "airlock: mode \"regular\" asks before running, and there is no "
                            "terminal to ask on: pass --yes to run anyway\n");
            goto out;
        }
        if (!yes) {
            fprintf(stderr, "airlock: not run\n");
            goto out;
        }
    }

    if (build_env(&env, &o, &policy, home) < 0)
        goto out;
    /* Network: none at all, unless the policy allows something; then the
     * egress proxy is the only way out. */
    int networked = run_network_wanted(&policy);
    if (networked && (run_network_prepare(&net, &policy, &o.hosts, settings_dir,
                                          o.ask_timeout_s ? (unsigned)o.ask_timeout_s : 60) < 0 ||
                      run_network_env(&net, &env) < 0))
        goto out;
    /* A terminal of the sandbox's own when the user's is one (see
     * run_pty.h); it also owns the network questions from then on. */
    unsigned pty_stdio = o.no_pty ? 0 : run_pty_wanted();
    int pty_sock = -1;
    if (pty_stdio && run_pty_start(&pty, &pty_sock, pty_stdio) < 0) {
        fprintf(stderr, "airlock: %s\n", al_error_last());
        goto out;
    }
    net.pty = pty;
    if (o.decision_log && run_network_decision_log(&net, o.decision_log) < 0)
        goto out;
    struct sb_config cfg = {
        .policy = &policy,
        .cwd = cwd,
        .home = home,
        .argv = cmd,
        .envp = env.items,
        .memory_mb = o.memory_mb,
        .pids = o.pids,
        .cpus = o.cpus,
        .timeout_s = (unsigned)o.timeout_s,
        .debug = o.debug,
        .on_netns = networked ? run_network_on_netns : NULL,
        .netns_payload = &net,
        .tcp_connect_ports = networked ? proxy_ports : NULL,
        .n_tcp_connect_ports = networked ? 2 : 0,
        .ro_paths = (const char *const[]){net.connect_helper},
        .n_ro_paths = networked && net.connect_helper[0] ? 1 : 0,
        .pty_stdio = pty_stdio,
        .pty_sock = pty_sock,
    };
    struct sb_result res;
    int err = sb_run(&res, &cfg);
    if (err == AL_EUNSUPP && strstr(al_error_last(), "cannot create namespaces")) {
        if (!policy.weaker_nested) {
            fprintf(stderr,
                    "airlock: %s. Inside another sandbox or an unprivileged container, set "
                    "\"sandbox.enableWeakerNestedSandbox\": true to run with Landlock + seccomp "
                    "only\n",
                    al_error_last());
            goto out;
        }
        fprintf(stderr,
                "airlock: warning: %s; running the WEAKER sandbox: Landlock + seccomp + "
                "no_new_privs only. No private /tmp or /proc, host processes visible, "
                "network limited to Landlock's TCP rules (UDP not blocked), no limits "
                "(--memory, --pids)\n",
                al_error_last());
        /* No private devpts to open a terminal from (the host's ptmx is
         * outside what Landlock lets the command write): the weaker mode
         * runs on airlock's own descriptors, asking on /dev/tty. */
        if (pty) {
            run_pty_stop(pty);
            net.pty = NULL;
            cfg.pty_stdio = 0;
        }
        err = sb_run_weaker(&res, &cfg);
    }
    /* The user's terminal back before airlock says anything more. */
    run_pty_stop(pty);
    if (err < 0) {
        fprintf(stderr, "airlock: sandbox could not be built: %s\n", al_error_last());
        goto out;
    }
    rc = report(&res, &cfg);
    run_hints_print(&res, &policy, cwd, name, cmd, o.shell_string, networked);
out:
    run_pty_stop(pty);
    run_network_stop(&net); /* waits for its questions: before the relay goes */
    run_pty_free(pty);
    al_strlist_free(&env);
    al_policy_free(&policy);
    free(settings_dir);
    run_opts_free(&o);
    return rc;
}
