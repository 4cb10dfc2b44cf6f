/* Unit tests for sb_plan_build() and sb_plan_build_ex(): the mount list a
 * policy gives on a scratch tree (what is bound writable, hidden,
 * re-exposed, protected and pinned, in which order, where a session's
 * workspace is moved), and the policies it refuses. No privilege needed:
 * the plan is computed on the host before any namespace exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sandbox_int.h"
#include "scratch.h"

#include "airlock/error.h"
#include "airlock/settings.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    struct scratch s;  /* the scratch tree */
    char ws[PATH_MAX]; /* the workspace (cwd) */
    char home[PATH_MAX];
    struct al_policy policy;
    struct sb_config cfg;
};

/* The scratch tree: a workspace with secrets and code-running files, a
 * home with credential stores. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    scratch_make(&f->s, "airlock-plan");
    scratch_path(f->ws, &f->s, "ws");
    scratch_path(f->home, &f->s, "home");
    static const char *const dirs[] = {"ws/sub",    "ws/venv/.env", "ws/.git",
                                       "home/.ssh", "home/.aws",    "outside/keys/public"};
    static const char *const files[] = {
        "ws/.env",         "ws/sub/.env.local",    "ws/.git/config",     "ws/.bashrc",
        "ws/sub/cert.pem", "home/.ssh/id_ed25519", "outside/keys/secret"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++)
        scratch_mkdirs(&f->s, dirs[i]);
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
        scratch_touch(&f->s, files[i]);
    char target[PATH_MAX], link[PATH_MAX];
    scratch_path(target, &f->s, "outside/keys/secret");
    scratch_path(link, &f->s, "ws/link-to-secret");
    assert_int_equal(symlink(target, link), 0);

    al_policy_init(&f->policy);
    assert_int_equal(sb_policy_add_defaults(&f->policy, f->ws, f->home), 0);
    f->cfg.policy = &f->policy;
    f->cfg.cwd = f->ws;
    f->cfg.home = f->home;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    al_policy_free(&f->policy);
    scratch_remove(&f->s);
    free(f);
    return 0;
}

/* The mount of `kind` at host path root/rel, or NULL. */
static const struct sb_mount *find(const struct sb_plan *plan, const struct fixture *f,
                                   enum sb_mount_kind kind, const char *rel)
{
    char p[PATH_MAX];
    if (rel[0] == '/')
        snprintf(p, sizeof(p), "%s", rel);
    else
        scratch_path(p, &f->s, rel);
    for (size_t i = 0; i < plan->len; i++)
        if (plan->mounts[i].kind == kind && strcmp(plan->mounts[i].path, p) == 0)
            return &plan->mounts[i];
    return NULL;
}

static size_t depth(const char *p)
{
    size_t d = 0;
    for (; *p; p++)
        d += *p == '/';
    return d;
}

static void test_default_policy(void **state)
{
    struct fixture *f = *state;
    struct sb_plan plan;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), 0);
    assert_false(plan.allow_unix_sockets); /* the default: none */
    assert_false(plan.allow_local_binding);

    /* The workspace, writable; and the only writable root. */
    const struct sb_mount *m = find(&plan, f, SB_MNT_RW, "ws");
    assert_non_null(m);
    assert_true(m->is_dir);
    assert_null(m->dst);
    assert_int_equal(plan.writable.len, 1);
    assert_string_equal(plan.writable.items[0], f->ws);

    /* dotenv files hidden, a directory named .env (a virtualenv) not. */
    assert_non_null(find(&plan, f, SB_MNT_MASK, "ws/.env"));
    assert_false(find(&plan, f, SB_MNT_MASK, "ws/.env")->is_dir);
    assert_non_null(find(&plan, f, SB_MNT_MASK, "ws/sub/.env.local"));
    assert_null(find(&plan, f, SB_MNT_MASK, "ws/venv/.env"));

    /* The credential stores under home hidden, missing ones skipped. */
    assert_non_null(find(&plan, f, SB_MNT_MASK, "home/.ssh"));
    assert_true(find(&plan, f, SB_MNT_MASK, "home/.ssh")->is_dir);
    assert_non_null(find(&plan, f, SB_MNT_MASK, "home/.aws"));
    assert_null(find(&plan, f, SB_MNT_MASK, "home/.gnupg"));

    /* A home under /tmp (replaced by the sandbox's private one) is bound
     * read-only. */
    assert_non_null(find(&plan, f, SB_MNT_RO, "home"));

    /* Mandatory protections in the workspace; a missing .git/hooks gets a
     * placeholder, and the directories above protected paths are pinned. */
    assert_non_null(find(&plan, f, SB_MNT_PROTECT, "ws/.git/hooks"));
    assert_non_null(find(&plan, f, SB_MNT_PROTECT, "ws/.git/config"));
    assert_non_null(find(&plan, f, SB_MNT_PROTECT, "ws/.bashrc"));
    assert_non_null(find(&plan, f, SB_MNT_PIN, "ws/.git"));
    assert_null(find(&plan, f, SB_MNT_PIN, "ws"));
    char hooks[PATH_MAX];
    scratch_path(hooks, &f->s, "ws/.git/hooks");
    assert_int_equal(plan.placeholders.len, 1);
    assert_string_equal(plan.placeholders.items[0], hooks);
    struct stat st;
    assert_int_equal(stat(hooks, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* The order mounts are made in: group by group, shallow first. */
    for (size_t i = 1; i < plan.len; i++) {
        const struct sb_mount *a = &plan.mounts[i - 1], *b = &plan.mounts[i];
        assert_true(a->kind <= b->kind);
        if (a->kind == b->kind)
            assert_true(depth(a->path) <= depth(b->path));
    }

    sb_plan_remove_placeholders(&plan);
    assert_int_equal(stat(hooks, &st), -1);
    sb_plan_free(&plan);
    assert_int_equal(plan.len, 0);
    assert_null(plan.mounts);
}

/* Symlinks are resolved: the target is what gets hidden. Globs expand. */
static void test_resolve_and_globs(void **state)
{
    struct fixture *f = *state;
    char p[PATH_MAX];
    scratch_path(p, &f->s, "ws/link-to-secret");
    assert_int_equal(al_strlist_push(&f->policy.deny_read, p), 0);
    scratch_path(p, &f->s, "ws/**/*.pem");
    assert_int_equal(al_strlist_push(&f->policy.deny_read, p), 0);
    scratch_path(p, &f->s, "ws/does-not-exist");
    assert_int_equal(al_strlist_push(&f->policy.deny_read, p), 0);
    struct sb_plan plan;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), 0);
    assert_non_null(find(&plan, f, SB_MNT_MASK, "outside/keys/secret"));
    assert_null(find(&plan, f, SB_MNT_MASK, "ws/link-to-secret"));
    assert_non_null(find(&plan, f, SB_MNT_MASK, "ws/sub/cert.pem"));
    assert_null(find(&plan, f, SB_MNT_MASK, "ws/does-not-exist"));
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);
}

/* allowRead only inside a hidden directory, denyWrite only inside a
 * writable one: the rest is dropped. */
static void test_reexpose_and_protect_scope(void **state)
{
    struct fixture *f = *state;
    char p[PATH_MAX];
    scratch_path(p, &f->s, "outside/keys");
    assert_int_equal(al_strlist_push(&f->policy.deny_read, p), 0);
    scratch_path(p, &f->s, "outside/keys/public");
    assert_int_equal(al_strlist_push(&f->policy.allow_read, p), 0);
    scratch_path(p, &f->s, "ws/sub");
    assert_int_equal(al_strlist_push(&f->policy.allow_read, p), 0);
    scratch_path(p, &f->s, "ws/sub/cert.pem");
    assert_int_equal(al_strlist_push(&f->policy.deny_write, p), 0);
    scratch_path(p, &f->s, "outside/keys/public");
    assert_int_equal(al_strlist_push(&f->policy.deny_write, p), 0);
    struct sb_plan plan;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), 0);
    assert_non_null(find(&plan, f, SB_MNT_MASK, "outside/keys"));
    assert_non_null(find(&plan, f, SB_MNT_REEXPOSE, "outside/keys/public"));
    assert_null(find(&plan, f, SB_MNT_REEXPOSE, "ws/sub"));
    assert_non_null(find(&plan, f, SB_MNT_PROTECT, "ws/sub/cert.pem"));
    assert_non_null(find(&plan, f, SB_MNT_PIN, "ws/sub"));
    assert_null(find(&plan, f, SB_MNT_PROTECT, "outside/keys/public"));
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);
}

static void test_allow_git_config(void **state)
{
    struct fixture *f = *state;
    f->policy.allow_git_config = 1;
    struct sb_plan plan;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), 0);
    assert_null(find(&plan, f, SB_MNT_PROTECT, "ws/.git/config"));
    assert_non_null(find(&plan, f, SB_MNT_PROTECT, "ws/.git/hooks"));
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);
}

static void test_refused(void **state)
{
    struct fixture *f = *state;
    struct sb_plan plan;
    assert_int_equal(al_strlist_push(&f->policy.allow_write, "/"), 0);
    assert_int_equal(sb_plan_build(&plan, &f->cfg), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "/ writable"));
    al_strlist_free(&f->policy.allow_write);

    f->cfg.cwd = "/";
    assert_int_equal(sb_plan_build(&plan, &f->cfg), AL_EINVAL);
    f->cfg.cwd = f->ws;

    uint16_t ports[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    f->cfg.tcp_connect_ports = ports;
    f->cfg.n_tcp_connect_ports = 9;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), AL_EINVAL);
    f->cfg.n_tcp_connect_ports = 8;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), 0);
    assert_int_equal(plan.n_connect_ports, 8);
    assert_int_equal(plan.connect_ports[7], 8);
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);
    /* Nothing left behind by a refused plan. */
    char hooks[PATH_MAX];
    struct stat st;
    scratch_path(hooks, &f->s, "ws/.git/hooks");
    assert_int_equal(stat(hooks, &st), -1);
}

/* Unix sockets and local binding come from the policy; read-only extra
 * paths are bound when they exist. */
static void test_policy_bits(void **state)
{
    struct fixture *f = *state;
    f->policy.unix_sockets = AL_UNIX_SOCKETS_LIST;
    f->policy.allow_local_binding = 1;
    char ro[PATH_MAX];
    scratch_path(ro, &f->s, "outside");
    const char *ro_paths[] = {ro, "/nonexistent/airlock-helper"};
    f->cfg.ro_paths = ro_paths;
    f->cfg.n_ro_paths = 2;
    struct sb_plan plan;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), 0);
    assert_true(plan.allow_unix_sockets);
    assert_true(plan.allow_local_binding);
    assert_non_null(find(&plan, f, SB_MNT_RO, "outside"));
    assert_null(find(&plan, f, SB_MNT_RO, "/nonexistent/airlock-helper"));
    assert_null(plan.rootfs);
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);
}

/* A session's workspace is mounted elsewhere: every path in it moves
 * there (writable roots too, which Landlock resolves inside), and the host
 * copy and the hidden paths stay where they are. */
static void test_session_opts(void **state)
{
    struct fixture *f = *state;
    char hide[PATH_MAX];
    scratch_path(hide, &f->s, "outside");
    const char *hides[] = {hide, "/nonexistent/airlock-state"};
    struct sb_plan_opts opts = {
        .workspace_mount = "/workspace", .rootfs = "/", .hide = hides, .n_hide = 2};
    struct sb_plan plan;
    assert_int_equal(sb_plan_build_ex(&plan, &f->cfg, &opts), 0);
    const struct sb_mount *m = find(&plan, f, SB_MNT_RW, "ws");
    assert_non_null(m);
    assert_string_equal(m->dst, "/workspace");
    assert_string_equal(plan.writable.items[0], "/workspace");
    m = find(&plan, f, SB_MNT_PROTECT, "ws/.git/hooks");
    assert_non_null(m);
    assert_string_equal(m->dst, "/workspace/.git/hooks");
    m = find(&plan, f, SB_MNT_MASK, "ws/.env");
    assert_non_null(m);
    assert_string_equal(m->dst, "/workspace/.env");
    /* The host copy of the workspace, hidden where it is. */
    m = find(&plan, f, SB_MNT_MASK, "ws");
    assert_non_null(m);
    assert_true(m->no_remap);
    assert_null(m->dst);
    m = find(&plan, f, SB_MNT_MASK, "outside");
    assert_non_null(m);
    assert_true(m->no_remap);
    assert_null(find(&plan, f, SB_MNT_MASK, "/nonexistent/airlock-state"));
    assert_string_equal(plan.rootfs, "/");
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);

    static const char *const bad[] = {"workspace", "/", "/a/../b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        opts.workspace_mount = bad[i];
        assert_int_equal(sb_plan_build_ex(&plan, &f->cfg, &opts), AL_EINVAL);
    }
    opts.workspace_mount = "/workspace";
    opts.rootfs = "/nonexistent/airlock-rootfs";
    assert_int_equal(sb_plan_build_ex(&plan, &f->cfg, &opts), AL_EINVAL);
}

/* Files the caller made, bound read-only over other paths (airlock run's
 * masked credential files, the session CA bundle): after every other
 * mount, one entry per destination even for a shared source, and a bad
 * destination or a missing source refuses the plan. */
static void test_file_binds(void **state)
{
    struct fixture *f = *state;
    char src[PATH_MAX], dst[PATH_MAX];
    scratch_touch(&f->s, "outside/masked");
    scratch_path(src, &f->s, "outside/masked");
    scratch_path(dst, &f->s, "home/.aws/credentials"); /* inside a hidden dir */
    const struct sb_file_bind binds[] = {{src, dst}, {src, "/etc/ssl/cert.pem"}};
    f->cfg.file_binds = binds;
    f->cfg.n_file_binds = 2;
    struct sb_plan plan;
    assert_int_equal(sb_plan_build(&plan, &f->cfg), 0);
    size_t n = 0;
    unsigned seen = 0;
    for (size_t i = 0; i < plan.len; i++) {
        if (plan.mounts[i].kind != SB_MNT_FILE) {
            assert_int_equal(n, 0); /* every other mount comes first */
            continue;
        }
        assert_string_equal(plan.mounts[i].path, src);
        assert_true(plan.mounts[i].no_remap);
        seen |= strcmp(plan.mounts[i].dst, dst) == 0 ? 1u : 0u;
        seen |= strcmp(plan.mounts[i].dst, "/etc/ssl/cert.pem") == 0 ? 2u : 0u;
        n++;
    }
    assert_int_equal(n, 2);
    assert_int_equal(seen, 3);
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);

    const struct sb_file_bind relative[] = {{src, "etc/x"}}, climbing[] = {{src, "/a/../etc"}},
                              missing[] = {{"/nonexistent/airlock-masked", "/etc/x"}};
    const struct sb_file_bind *bad[] = {relative, climbing, missing};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        f->cfg.file_binds = bad[i];
        f->cfg.n_file_binds = 1;
        assert_int_equal(sb_plan_build(&plan, &f->cfg), AL_EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_and_globs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reexpose_and_protect_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_git_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_opts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_binds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
