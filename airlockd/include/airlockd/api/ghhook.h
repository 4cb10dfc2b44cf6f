/* GitHub webhooks in (POST /v1/hooks/github, docs/forge.md): the
 * X-Hub-Signature-256 check and the parse of a comment event. Both read
 * bytes from the network before anything else trusts them: (pointer,
 * length), bounded, unit-tested (tests/unit/airlockd/ghhook.c) and fuzzed
 * (tests/fuzz/ghhook). */
#ifndef ALD_API_GHHOOK_H
#define ALD_API_GHHOOK_H

#include <stddef.h>
#include <stdint.h>

#define ALD_GHHOOK_TEXT_MAX 65536 /* bytes of a comment passed on (GitHub's limit) */

/* Whether `header` (hlen bytes) is "sha256=" and the 64 hex digits (either
 * case) of HMAC-SHA256(secret, body), compared in constant time. 0, or
 * AL_EAUTH (missing, malformed or wrong) or AL_EINVAL (no secret). */
int ald_ghhook_sig_verify(const char *header, size_t hlen, const void *secret, size_t slen,
                          const void *body, size_t blen);

/* What a comment event asks for. Strings are NUL-terminated copies. */
struct ald_ghhook_comment {
    char repo[201];       /* repository.full_name, "owner/name" */
    char author[101];     /* comment.user.login */
    char association[33]; /* comment.author_association ("OWNER", ...) */
    char url[1025];       /* comment.html_url ("" when absent) */
    int64_t number;       /* the or pull request's number */
    int64_t comment_id;   /* comment.id (signed with the body), 0 when absent */
    int64_t created_s;    /* comment.created_at (signed), seconds since the epoch; 0 when absent */
    int is_pr;            /* 1 when the comment is on a pull request */
    char *text;           /* comment.body (malloc'd; ald_ghhook_comment_free) */
    const char *args;     /* in text: what follows the command, spaces skipped */
};

/* The oldest comment a delivery may start a job for (seconds): below the
 * 24 h an Idempotency-Key is kept, so that a signed body replayed later
 * finds either its earlier job or nothing at all. */
#define ALD_GHHOOK_MAX_AGE_S (23 * 3600)

/* An ISO 8601 / RFC 3339 time as GitHub writes it ("2026-12-07T18:00:00Z",
 * optional fraction, "Z" or "+HH:MM"/"-HH:MM"), `len` bytes: *out seconds
 * since the epoch (UTC). AL_EINVAL for anything else. */
int ald_ghhook_time_parse(const char *s, size_t len, int64_t *out);

enum ald_ghhook_result {
    ALD_GHHOOK_START = 1,  /* a comment starting with the command: *out filled */
    ALD_GHHOOK_IGNORE = 0, /* nothing to do: `why` says why */
};

/* Parses the body (len bytes) of a delivery of event `event` (the
 * X-GitHub-Event header, may be NULL): an "issue_comment" or
 * "pull_request_review_comment" with action "created" whose comment body
 * starts (after white space) with `command` followed by white space or its
 * end is ALD_GHHOOK_START, with *out filled (free it with
 * ald_ghhook_comment_free). Any other event, action or comment is
 * ALD_GHHOOK_IGNORE with the reason in `why` (why_size bytes). AL_EINVAL
 * (reason in `why`) when the body is not a JSON object or the event lacks a
 * field it must have (repository.full_name, comment.body, the number) or
 * one is malformed (too long, NUL inside, a comment.created_at that is not
 * a time); AL_ENOMEM. */
int ald_ghhook_parse(struct ald_ghhook_comment *out, char *why, size_t why_size, const char *event,
                     const char *body, size_t len, const char *command);

void ald_ghhook_comment_free(struct ald_ghhook_comment *c);

#endif
