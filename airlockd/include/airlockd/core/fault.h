/* Why core refused a client's request, described for the client: a kind of
 * failure (the api maps each kind to an HTTP status, api/http.c), a stable
 * error code ("conflict", ...), the field it is about and a message. Core and
 * the adapters fill one; they never see an HTTP status. */
#ifndef ALD_CORE_FAULT_H
#define ALD_CORE_FAULT_H

enum ald_fault_kind {
    ALD_FAULT_INTERNAL,    /* our failure (500) */
    ALD_FAULT_INVALID,     /* a bad value in the request (400) */
    ALD_FAULT_FORBIDDEN,   /* refused by policy or by a person (403) */
    ALD_FAULT_NOT_FOUND,   /* nothing by that name for this caller (404) */
    ALD_FAULT_CONFLICT,    /* refused in the current state (409) */
    ALD_FAULT_QUOTA,       /* over a quota (429) */
    ALD_FAULT_UNAVAILABLE, /* cannot be done now: stopping, no uid left (503) */
    ALD_FAULT_UPSTREAM,    /* a repository's upstream (or the way to it) failed (502) */
};

struct ald_fault {
    enum ald_fault_kind kind;
    const char *code; /* static string */
    char field[128];  /* "" when none */
    char message[1024];
};

/* Fills `f` and returns AL_EINVAL (for `return ald_fault_set(...)`). */
int ald_fault_set(struct ald_fault *f, enum ald_fault_kind kind, const char *code,
                  const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A failure of the store (`err` < 0, al_error_last() the reason): the
 * database unreachable or out of time (AL_EAGAIN) is ALD_FAULT_UNAVAILABLE
 * "unavailable" (503), anything else ALD_FAULT_INTERNAL. Returns AL_EINVAL. */
int ald_fault_store(struct ald_fault *f, int err);

#endif
