/* Outgoing webhooks (docs/webhooks.md): signed deliveries of events
 * ("job.queued", "approval.pending", ...) to a URL a caller gave, kept in a
 * persisted outbox and retried with backoff by a delivery thread
 * (adapters/webhooks.c) until delivered or the retry time is up. */
#ifndef ALD_CORE_WEBHOOK_H
#define ALD_CORE_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/fault.h"

#include "airlock/ipaddr.h"

struct ald;

#define ALD_WEBHOOK_URL_MAX    2048
#define ALD_WEBHOOK_SECRET_MAX 256
#define ALD_WEBHOOK_ID_LEN     22 /* "d_" + 20 hex */

/* Checks a webhook URL a caller gave (scheme http/https, host, port, no
 * userinfo, length, and the SSRF guard: loopback, link-local, private,
 * unique-local, multicast, unspecified addresses — literal or resolved —
 * refused unless config `webhooks.allow_private` (operator) is true).
 * 0 when acceptable; on refusal fills f (ALD_FAULT_INVALID, field as given)
 * and returns a negative code. */
int ald_webhook_url_check(struct ald *d, const char *field, const char *url, struct ald_fault *f);

/* Queues one delivery, persisted before it returns: event name
 * ("job.queued", ...), payload (borrowed; the body is {"event":...,
 * "delivery":..., "created_at":..., "data": payload}), url + secret (secret
 * is used for X-Airlock-Signature-256 and stored sealed, never returned by
 * the API), owner user and subject id (job or session id) for the delivery
 * log. 0, or a negative code with f filled. */
int ald_webhook_enqueue(struct ald *d, const char *user, const char *subject, const char *url,
                        const char *secret, const char *event, json_t *payload,
                        struct ald_fault *f);

/* One delivery as core hands it to the outbox (hooks.webhook.enqueue):
 * every field borrowed. `body` is the exact bytes sent and signed. */
struct ald_webhook_item {
    const char *id; /* "d_" + 20 hex */
    const char *user, *subject, *event, *url, *secret;
    const char *body;
    size_t body_len;
    uint64_t created_ms;
};

/* A webhook URL taken apart (ald_webhook_url_parse). */
struct ald_webhook_url {
    int https;
    char host[256]; /* without brackets; lower case */
    uint16_t port;  /* the scheme's default when the URL has none */
};

/* Parses `url` (`len` bytes, untrusted): "http[s]://HOST[:PORT][/path][?query]",
 * printable ASCII only (no space, CR, LF, NUL), at most ALD_WEBHOOK_URL_MAX
 * bytes, no userinfo ("@" in the authority), no fragment, HOST a DNS name
 * or an IP literal (IPv6 in brackets, no zone), PORT 1..65535. 0 and *out,
 * or AL_EINVAL with the reason in `why`. Resolves nothing. */
int ald_webhook_url_parse(struct ald_webhook_url *out, const char *url, size_t len, char *why,
                          size_t whysz);

/* The SSRF guard for one address: 1 when a delivery may connect to it
 * (a public address, al_addr_classify, or any when allow_private). */
int ald_webhook_addr_ok(const struct al_addr *a, int allow_private);

#define ALD_WEBHOOK_ADDR_MAX 8

/* Resolves `host` (an IP literal is taken as is) and vets every address
 * it has with ald_webhook_addr_ok: 0 and out[0..*n) (the first `max`
 * addresses, *n ≥ 1) when all pass; AL_EPERM when one is refused,
 * AL_ENOTFOUND when it does not resolve, AL_EINVAL for a malformed
 * literal, with the reason in `why`. */
int ald_webhook_resolve(struct al_addr *out, size_t max, size_t *n, const char *host,
                        int allow_private, char *why, size_t whysz);

/* "sha256=" + hex HMAC-SHA256 of `body` under `secret` into out (72 bytes). */
int ald_webhook_sign(char out[72], const char *secret, const void *body, size_t len);

/* The delay before retry number `attempt` (1 = after the first failure):
 * initial_ms * 2^(attempt-1), at most max_ms, then a random part taken off
 * (full jitter on the upper half: [d/2, d]); `rnd` is a random 32-bit value. */
uint64_t ald_webhook_backoff_ms(unsigned attempt, uint64_t initial_ms, uint64_t max_ms,
                                uint32_t rnd);

/* A session's webhook ("webhook": {"url", "secret"} of POST /v1/sessions)
 * as its row keeps it: {"url", "secret": sealed}. Checks `v` (borrowed)
 * with ald_webhook_url_check and the secret (1..ALD_WEBHOOK_SECRET_MAX
 * printable bytes); *out a new object, or f filled. `sid` names the seal. */
int ald_webhook_session_prepare(struct ald *d, const char *sid, json_t *v, json_t **out,
                                struct ald_fault *f);

/* Queues `event` with `payload` (borrowed) to the session webhook `rec`
 * ({"url", "secret": sealed}, from ald_webhook_session_prepare) of session
 * `sid` of `user`. Failures are logged, not returned (a notification). */
void ald_webhook_session_notify(struct ald *d, const char *sid, const char *user, json_t *rec,
                                const char *event, json_t *payload);

#endif
