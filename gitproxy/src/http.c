#include "gp_http.h"
#include "airlock/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t conn_fill(struct gp_conn *c)
{
    if (c->in_start == c->in_end)
        c->in_start = c->in_end = 0;
    if (c->in_end == sizeof(c->in)) {
        if (c->in_start == 0)
            return AL_ETOOBIG;
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_end, sizeof(c->in) - c->in_end, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return AL_EIO;
        c->in_end += (size_t)n;
        return n;
    }
}

int gp_http_read_request(struct gp_conn *c, struct gp_http_req *req)
{
    /* Wait for the blank line ending the head. */
    const char *end;
    for (;;) {
        end = memmem(c->in + c->in_start, c->in_end - c->in_start, "\r\n\r\n", 4);
        if (end)
            break;
        ssize_t n = conn_fill(c);
        if (n == AL_ETOOBIG)
            return al_error_set(AL_ETOOBIG, "request head too large");
        if (n <= 0)
            return AL_EIO;
    }
    const char *p = c->in + c->in_start;
    size_t head_len = (size_t)(end - p) + 4;
    int err = gp_http_head_parse(req, p, head_len);
    if (err < 0)
        return err;
    c->in_start += head_len;
    c->chunked = req->chunked;
    c->remaining = req->chunked ? 0 : (uint64_t)(req->content_length > 0 ? req->content_length : 0);
    c->body_done = !req->chunked && c->remaining == 0;
    c->continue_pending = req->expect_continue;
    return 0;
}

/* Reads one CRLF-terminated line of the chunked framing into line. */
static int conn_line(struct gp_conn *c, char *line, size_t cap)
{
    for (;;) {
        const char *p = c->in + c->in_start;
        const char *e = memmem(p, c->in_end - c->in_start, "\r\n", 2);
        if (e) {
            size_t len = (size_t)(e - p);
            if (len >= cap)
                return AL_EINVAL;
            memcpy(line, p, len);
            line[len] = '\0';
            c->in_start += len + 2;
            return 0;
        }
        if (c->in_end - c->in_start >= cap)
            return AL_EINVAL;
        ssize_t n = conn_fill(c);
        if (n <= 0)
            return n == 0 ? AL_EIO : (int)n;
    }
}

ssize_t gp_http_read_body(struct gp_conn *c, void *dst, size_t max)
{
    char line[128];
    if (c->continue_pending) {
        c->continue_pending = 0;
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (gp_http_write(c, cont, sizeof(cont) - 1) < 0)
            return AL_EIO;
    }
    while (!c->body_done && c->remaining == 0) {
        if (!c->chunked) {
            c->body_done = 1;
            break;
        }
        if (c->chunk_trailer) {
            if (conn_line(c, line, sizeof(line)) < 0 || line[0])
                return al_error_set(AL_EINVAL, "bad chunk framing");
            c->chunk_trailer = 0;
        }
        if (conn_line(c, line, sizeof(line)) < 0)
            return al_error_set(AL_EINVAL, "bad chunk size line");
        char *end;
        char *semi = strchr(line, ';');
        if (semi)
            *semi = '\0';
        unsigned long long n = strtoull(line, &end, 16);
        if (end == line || *end || line[0] == '-' || line[0] == '+' || n > (1ull << 40))
            return al_error_set(AL_EINVAL, "bad chunk size");
        if (n == 0) {
            /* Trailers up to the empty line. */
            int count = 0;
            do {
                if (conn_line(c, line, sizeof(line)) < 0 || ++count > 32)
                    return al_error_set(AL_EINVAL, "bad chunked trailer");
            } while (line[0]);
            c->body_done = 1;
            break;
        }
        c->remaining = n;
        c->chunk_trailer = 1;
    }
    if (c->body_done)
        return 0;
    if (c->in_start == c->in_end) {
        ssize_t n = conn_fill(c);
        if (n <= 0)
            return AL_EIO;
    }
    size_t avail = c->in_end - c->in_start;
    size_t take = avail < max ? avail : max;
    if (take > c->remaining)
        take = (size_t)c->remaining;
    memcpy(dst, c->in + c->in_start, take);
    c->in_start += take;
    c->remaining -= take;
    c->body_read += take;
    return (ssize_t)take;
}

int gp_http_write(struct gp_conn *c, const void *data, size_t len)
{
    return gp_write_all(c->fd, data, len);
}

int gp_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return AL_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

int gp_http_send_head(struct gp_conn *c, int status, const char *content_type, const char *extra)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, status_text(status), content_type, extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return AL_EINVAL;
    c->headers_sent = 1;
    return gp_http_write(c, head, (size_t)n);
}

int gp_http_respond(struct gp_conn *c, int status, const char *content_type, const char *extra,
                    const void *body, size_t len)
{
    int err = gp_http_send_head(c, status, content_type, extra);
    if (err == 0 && len)
        err = gp_http_write(c, body, len);
    return err;
}
