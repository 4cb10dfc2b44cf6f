/* The seccomp denials shared by airlock's two filters: the sandbox's
 * (session/src/seccomp_rules.c, compiled to BPF at build time) and the git
 * proxy front's (gitproxy/src/front_seccomp.c, built when the front starts).
 * Each filter adds its own denials after these, beside its own reasons.
 * Built as airlock_seccomp_deny, apart from airlock_common, so that only
 * what builds a filter links libseccomp. */
#ifndef AIRLOCK_SECCOMP_DENY_H
#define AIRLOCK_SECCOMP_DENY_H

#include <seccomp.h>
#include <stddef.h>

/* Adds to `ctx` (a default-allow filter for the native architecture) what
 * every airlock filter denies:
 *   - any call of another ABI (i386, x32) kills the process;
 *   - mounts and root changes, namespaces, other processes' memory, and
 *     the kernel and machine interfaces nothing of ours uses: EPERM;
 *   - clone() with a namespace flag (CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER,
 *     NEWPID, NEWNET, NEWCGROUP): EPERM;
 *   - clone3(): ENOSYS, so libc falls back to clone(), whose flags a
 *     filter can read (clone3's are in memory).
 * 0, or the negative errno of the libseccomp call that failed (`ctx` is
 * then partly filled; the caller still releases it). */
int al_seccomp_deny_shared_add(scmp_filter_ctx ctx);

/* Adds an EPERM rule to `ctx` for each of the `n` syscall names; a name
 * that does not exist on this architecture is skipped. 0, or the negative
 * errno of the first rule libseccomp refused, with *failed_out (if not
 * NULL) set to its name. */
int al_seccomp_deny_names_add(scmp_filter_ctx ctx, const char *const *names, size_t n,
                              const char **failed_out);

/* Loads into the calling process (no_new_privs must be set) a default-allow
 * filter of the shared denials plus EPERM for each of the `n` names (a
 * proxy front's own list: the git proxy's front_seccomp.c, the egress
 * proxy's np_front_seccomp.c). Applies to every thread made afterwards.
 * 0, AL_ENOMEM, AL_ERROR (a rule refused, named in al_error_last()) or
 * AL_EIO (the kernel refused the filter). */
int al_seccomp_deny_load(const char *const *names, size_t n);

#endif
