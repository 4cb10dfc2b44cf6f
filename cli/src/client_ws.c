/* WebSocket client connection (client_ws.h). */
#include "client_ws.h"

#include "airlock/base64.h"
#include "airlock/error.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define WS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HEAD 16384 /* the server's handshake answer (error body included) */
#define WS_WAIT_MS  30000 /* for the handshake answer */
#define WS_IN_CAP   (CL_WS_MAX_FRAME + AL_WS_MAX_HEADER)

/* Waits until the socket is readable (`out` 0) or writable (1). */
static int wait_fd(int fd, int out, int ms)
{
    struct pollfd p = {fd, out ? POLLOUT : POLLIN, 0};
    int n;
    while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
        ;
    return n > 0 ? 0 : al_error_set(AL_ETIMEOUT, "the server does not answer");
}

static int send_all(struct cl_ws *ws, const unsigned char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(ws->curl, data + off, len - off, &n);
        if (rc == CURLE_AGAIN) {
            if (wait_fd(ws->fd, 1, -1) < 0)
                return AL_EIO;
            continue;
        }
        if (rc != CURLE_OK)
            return al_error_set(AL_EIO, "send: %s", curl_easy_strerror(rc));
        off += n;
    }
    return 0;
}

/* The value of header `name` in the head `h` (NUL-terminated), copied to
 * out; 0 when present. */
static int head_value(const char *h, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(h, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, nl) != 0 || p[nl] != ':')
            continue;
        p += nl + 1;
        p += strspn(p, " \t");
        size_t n = strcspn(p, "\r\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= cap)
            return AL_ETOOBIG;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
    }
    return AL_ENOTFOUND;
}

/* The message of a JSON error body, or the status alone. */
static int refused(long status, const char *body)
{
    json_t *doc = json_loads(body, 0, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    const char *code = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    int err = status == 401 ? AL_EAUTH : status == 404 ? AL_ENOTFOUND : AL_EINVAL;
    al_error_set(err, "%ld %s: %s", status, code ? code : "error",
                 msg ? msg : "the server refused the WebSocket");
    json_decref(doc);
    return err;
}

/* Reads the answer to the handshake (up to the blank line, and a short
 * error body) and checks it. */
static int handshake_answer(struct cl_ws *ws, const char *key)
{
    char head[WS_MAX_HEAD + 1];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == WS_MAX_HEAD)
            return al_error_set(AL_ETOOBIG, "the server's answer is too long");
        size_t n = 0;
        CURLcode rc = curl_easy_recv(ws->curl, head + len, WS_MAX_HEAD - len, &n);
        if (rc == CURLE_AGAIN) {
            if (wait_fd(ws->fd, 0, WS_WAIT_MS) < 0)
                return AL_ETIMEOUT;
            continue;
        }
        if (rc != CURLE_OK || n == 0)
            return al_error_set(AL_EIO, "the server closed the connection during the handshake");
        len += n;
        head[len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end + 4 - head);
    long status = 0;
    if (sscanf(head, "HTTP/1.%*d %ld", &status) != 1)
        return al_error_set(AL_EINVAL, "not an HTTP answer");
    if (status != 101) {
        /* the error body: what came with the head, and the rest when it is short */
        char cl[32];
        unsigned long want = 0;
        if (head_value(head, "Content-Length", cl, sizeof(cl)) == 0)
            want = strtoul(cl, NULL, 10);
        while (want > len - head_len && len < WS_MAX_HEAD) {
            size_t n = 0;
            CURLcode rc = curl_easy_recv(ws->curl, head + len, WS_MAX_HEAD - len, &n);
            if (rc == CURLE_AGAIN && wait_fd(ws->fd, 0, WS_WAIT_MS) == 0)
                continue;
            if (rc != CURLE_OK || n == 0)
                break;
            len += n;
        }
        head[len] = '\0';
        return refused(status, head + head_len);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char in[64], want[32], got[64];
    snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
    if (!EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha1(), NULL) ||
        al_base64_encode_buf(want, sizeof(want), md, mdlen) < 0)
        return al_error_set(AL_EIO, "SHA-1 failed");
    if (head_value(head, "Sec-WebSocket-Accept", got, sizeof(got)) < 0 || strcmp(got, want) != 0)
        return al_error_set(AL_EINVAL, "the server's WebSocket handshake is wrong");
    /* frames that came with the answer */
    memcpy(ws->in, head + head_len, len - head_len);
    ws->in_len = len - head_len;
    return 0;
}

int cl_ws_connect(struct cl_ws *ws, struct cl_client *c, const char *path)
{
    memset(ws, 0, sizeof(*ws));
    ws->fd = -1;
    int start_err = cl_client_start(c);
    if (start_err < 0)
        return start_err;
    char *host = NULL, *port = NULL, *req = NULL;
    CURLU *u = curl_url();
    int err = AL_ENOMEM;
    unsigned char raw[16];
    char key[32];
    if (!u || !(ws->in = malloc(WS_IN_CAP)) || !(ws->curl = curl_easy_init()))
        goto out;
    if (curl_url_set(u, CURLUPART_URL, c->base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        err = al_error_set(AL_EINVAL, "AIRLOCK_URL %s is not a URL", c->base);
        goto out;
    }
    curl_easy_setopt(ws->curl, CURLOPT_URL, c->base);
    curl_easy_setopt(ws->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(ws->curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(ws->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(ws->curl, CURLOPT_CONNECTTIMEOUT, CL_CONNECT_SECS);
    curl_easy_setopt(ws->curl, CURLOPT_TCP_NODELAY, 1L);
    CURLcode rc = curl_easy_perform(ws->curl);
    curl_socket_t sock = CURL_SOCKET_BAD;
    if (rc != CURLE_OK || curl_easy_getinfo(ws->curl, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK ||
        sock == CURL_SOCKET_BAD) {
        err = al_error_set(AL_EIO, "cannot reach %s: %s", c->base, curl_easy_strerror(rc));
        goto out;
    }
    ws->fd = (int)sock;
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) ||
        al_base64_encode_buf(key, sizeof(key), raw, sizeof(raw)) < 0) {
        err = al_error_set(AL_EIO, "getrandom failed");
        goto out;
    }
    int v6 = strchr(host, ':') != NULL;
    if (asprintf(&req,
                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: airlock.v1\r\n%s%s\r\n",
                 path, v6 ? "[" : "", host, v6 ? "]" : "", port, key, c->auth ? c->auth : "",
                 c->auth ? "\r\n" : "") < 0) {
        req = NULL;
        goto out;
    }
    if ((err = send_all(ws, (const unsigned char *)req, strlen(req))) == 0)
        err = handshake_answer(ws, key);
out:
    if (req) {
        memset(req, 0, strlen(req)); /* the API key */
        free(req);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return err;
}

int cl_ws_send(struct cl_ws *ws, enum al_ws_opcode op, const void *data, size_t len)
{
    unsigned char mask[4], buf[AL_WS_MAX_HEADER + 4096];
    if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask))
        return al_error_set(AL_EIO, "getrandom failed");
    long h = al_ws_header_encode(buf, sizeof(buf), 1, op, len, mask);
    if (h < 0)
        return (int)h;
    /* masked in pieces through one bounded buffer */
    size_t off = 0, used = (size_t)h;
    do {
        size_t n = len - off;
        if (n > sizeof(buf) - used)
            n = sizeof(buf) - used;
        if (n)
            memcpy(buf + used, (const unsigned char *)data + off, n);
        al_ws_unmask(buf + used, n, mask, off);
        int err = send_all(ws, buf, used + n);
        if (err < 0)
            return err;
        off += n;
        used = 0;
    } while (off < len);
    return 0;
}

int cl_ws_fill(struct cl_ws *ws)
{
    if (ws->in_off) {
        memmove(ws->in, ws->in + ws->in_off, ws->in_len - ws->in_off);
        ws->in_len -= ws->in_off;
        ws->in_off = 0;
    }
    while (ws->in_len < WS_IN_CAP) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(ws->curl, ws->in + ws->in_len, WS_IN_CAP - ws->in_len, &n);
        if (rc == CURLE_AGAIN)
            return 0;
        if (rc != CURLE_OK)
            return al_error_set(AL_EIO, "receive: %s", curl_easy_strerror(rc));
        if (n == 0)
            return al_error_set(AL_EIO, "the server closed the connection");
        ws->in_len += n;
    }
    return 0;
}

int cl_ws_next(struct cl_ws *ws, struct al_ws_frame *f, unsigned char **payload)
{
    long n = al_ws_frame_parse(f, ws->in + ws->in_off, ws->in_len - ws->in_off, 0, CL_WS_MAX_FRAME);
    if (n <= 0)
        return n == 0 ? 0
                      : al_error_set((int)n, "the server sent a %s frame",
                                     n == AL_ETOOBIG ? "too large" : "malformed");
    *payload = ws->in + ws->in_off + f->header_len;
    ws->in_off += (size_t)n;
    return 1;
}

void cl_ws_close(struct cl_ws *ws)
{
    if (ws->curl)
        curl_easy_cleanup(ws->curl);
    free(ws->in);
    memset(ws, 0, sizeof(*ws));
    ws->fd = -1;
}
