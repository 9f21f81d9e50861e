
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include "bb.h"


/*
 * Connections on one epoll instance: non-blocking connect, writes that
 * queue what the socket does not take, HTTP/1.1 responses (Content-Length
 * or chunked) and websocket frames (RFC 6455, client side).
 *
 * An event names its connection by index and generation, so that an
 * event still queued for a connection closed meanwhile is ignored.
 */

#define BB_MAX_TARGETS   16
#define BB_MAX_EVENTS    1024
#define BB_READ_CHUNK    16384
#define BB_MAX_HEADER    65536


static void bb_conn_event(bb_conn_t *c, uint32_t events);
static void bb_conn_write(bb_conn_t *c);
static void bb_conn_read(bb_conn_t *c);
static void bb_conn_fail(bb_conn_t *c);
static int bb_conn_process(bb_conn_t *c);
static int bb_http_response(bb_conn_t *c);
static int bb_http_chunked(u_char *p, size_t n, size_t *body,
    size_t *consumed);
static int bb_ws_frame(bb_conn_t *c);
static int bb_conn_epoll(bb_conn_t *c, int op, uint32_t events);
static int bb_strncasecmp(const u_char *s1, const char *s2, size_t n);
static void bb_net_flush_deferred(void);


static int                  bb_epfd = -1;
static bb_conn_t          **bb_conns;
static uint32_t             bb_nconns;
static uint32_t             bb_max_conns;
static struct epoll_event   bb_events[BB_MAX_EVENTS];
static bb_target_t          bb_targets[BB_MAX_TARGETS];
static int                  bb_ntargets;
static bb_buf_t             bb_scratch;
static bb_conn_t          **bb_deferred;
static uint32_t             bb_ndeferred;


void
bb_fatal(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    fprintf(stderr, "bayeux-bench: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);

    exit(1);
}


uint64_t
bb_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


int
bb_net_init(int max_conns)
{
    bb_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (bb_epfd == -1) {
        return BB_ERROR;
    }

    bb_max_conns = (uint32_t) max_conns + 1;

    bb_conns = calloc(bb_max_conns, sizeof(bb_conn_t *));
    bb_deferred = calloc(bb_max_conns, sizeof(bb_conn_t *));

    if (bb_conns == NULL || bb_deferred == NULL) {
        return BB_ERROR;
    }

    return BB_OK;
}


/* "host:port", host an IPv4 address */

int
bb_net_add_target(const char *spec)
{
    char         *colon;
    long          port;
    bb_target_t  *t;

    if (bb_ntargets == BB_MAX_TARGETS
        || strlen(spec) >= sizeof(bb_targets[0].host))
    {
        return BB_ERROR;
    }

    t = &bb_targets[bb_ntargets];

    strcpy(t->host, spec);

    colon = strrchr(t->host, ':');
    if (colon == NULL) {
        return BB_ERROR;
    }

    port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535) {
        return BB_ERROR;
    }

    *colon = '\0';

    memset(&t->addr, 0, sizeof(t->addr));
    t->addr.sin_family = AF_INET;
    t->addr.sin_port = htons((uint16_t) port);

    if (inet_pton(AF_INET, t->host, &t->addr.sin_addr) != 1) {
        return BB_ERROR;
    }

    *colon = ':';
    bb_ntargets++;

    return BB_OK;
}


int
bb_net_targets(void)
{
    return bb_ntargets;
}


bb_target_t *
bb_net_target(int i)
{
    return &bb_targets[i % bb_ntargets];
}


int
bb_buf_reserve(bb_buf_t *b, size_t need)
{
    size_t   size;
    u_char  *p;

    if (b->size - b->len >= need) {
        return BB_OK;
    }

    if (b->pos) {
        memmove(b->data, b->data + b->pos, b->len - b->pos);
        b->len -= b->pos;
        b->pos = 0;

        if (b->size - b->len >= need) {
            return BB_OK;
        }
    }

    size = b->size * 2;

    if (size < b->len + need) {
        size = b->len + need;
    }

    if (size < 4096) {
        size = 4096;
    }

    p = realloc(b->data, size);
    if (p == NULL) {
        return BB_ERROR;
    }

    b->data = p;
    b->size = size;

    return BB_OK;
}


/*
 * Starts connecting "c" to a target; with "ws_path", the websocket
 * upgrade request is queued and c->open is called once it is accepted.
 */

int
bb_conn_open(bb_conn_t *c, int target, const char *ws_path)
{
    int           fd, one, n;
    bb_target_t  *t;

    if (c->id == 0) {
        if (bb_nconns + 1 >= bb_max_conns) {
            return BB_ERROR;
        }

        c->id = ++bb_nconns;
        bb_conns[c->id] = c;
    }

    t = bb_net_target(target);

    fd = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return BB_ERROR;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (connect(fd, (struct sockaddr *) &t->addr, sizeof(t->addr)) == -1
        && errno != EINPROGRESS)
    {
        close(fd);
        return BB_ERROR;
    }

    c->fd = fd;
    c->target = target;
    c->connecting = 1;
    c->upgrading = 0;
    c->websocket = 0;
    c->close_after = 0;
    c->in.pos = 0;
    c->in.len = 0;
    c->out.pos = 0;
    c->out.len = 0;
    c->frag.len = 0;

    if (ws_path) {
        c->upgrading = 1;

        if (bb_buf_reserve(&c->out, 512) != BB_OK) {
            bb_fatal("out of memory");
        }

        n = snprintf((char *) c->out.data, 512,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n", ws_path, t->host);

        c->out.len = (size_t) n;
    }

    c->writing = 1;

    if (bb_conn_epoll(c, EPOLL_CTL_ADD, EPOLLIN|EPOLLOUT) != BB_OK) {
        close(fd);
        c->fd = -1;
        return BB_ERROR;
    }

    return BB_OK;
}


/* closes with a reset: a load generator must not pile up TIME_WAIT */

void
bb_conn_close(bb_conn_t *c)
{
    struct linger  l;

    if (c->fd == -1) {
        return;
    }

    l.l_onoff = 1;
    l.l_linger = 0;
    (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));

    close(c->fd);

    c->fd = -1;
    c->gen++;
    c->deferred = NULL;
    c->connecting = 0;
    c->upgrading = 0;
    c->websocket = 0;
    c->writing = 0;
    c->in.pos = 0;
    c->in.len = 0;
    c->out.pos = 0;
    c->out.len = 0;
    c->frag.len = 0;
}


static void
bb_conn_fail(bb_conn_t *c)
{
    bb_conn_close(c);

    if (c->error) {
        c->error(c);
    }
}


/*
 * Sends now what the socket takes and queues the rest.  On BB_ERROR the
 * connection has been closed and c->error called: the caller must not
 * use it further.
 */

int
bb_conn_send(bb_conn_t *c, const u_char *data, size_t len)
{
    ssize_t  n;

    if (c->fd == -1) {
        return BB_ERROR;
    }

    n = 0;

    if (!c->connecting && c->out.pos == c->out.len) {
        c->out.pos = 0;
        c->out.len = 0;

        n = send(c->fd, data, len, MSG_NOSIGNAL);

        if (n == (ssize_t) len) {
            return BB_OK;
        }

        if (n == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                bb_conn_fail(c);
                return BB_ERROR;
            }

            n = 0;
        }
    }

    if (bb_buf_reserve(&c->out, len - (size_t) n) != BB_OK) {
        bb_fatal("out of memory");
    }

    memcpy(c->out.data + c->out.len, data + n, len - (size_t) n);
    c->out.len += len - (size_t) n;

    if (!c->writing) {
        c->writing = 1;

        if (bb_conn_epoll(c, EPOLL_CTL_MOD, EPOLLIN|EPOLLOUT) != BB_OK) {
            bb_conn_fail(c);
            return BB_ERROR;
        }
    }

    return BB_OK;
}


/*
 * A client frame header: FIN, the opcode, the length and a mask.  The
 * masking key is zero, so the payload goes out as it is (the server
 * still unmasks every byte).  "p" must have room for 14 bytes.
 */

size_t
bb_ws_frame_header(u_char *p, size_t len)
{
    size_t  n;

    p[0] = 0x81;

    if (len < 126) {
        p[1] = (u_char) (0x80 | len);
        n = 2;

    } else if (len < 65536) {
        p[1] = 0x80 | 126;
        p[2] = (u_char) (len >> 8);
        p[3] = (u_char) len;
        n = 4;

    } else {
        p[1] = 0x80 | 127;
        p[2] = 0;
        p[3] = 0;
        p[4] = 0;
        p[5] = 0;
        p[6] = (u_char) (len >> 24);
        p[7] = (u_char) (len >> 16);
        p[8] = (u_char) (len >> 8);
        p[9] = (u_char) len;
        n = 10;
    }

    memset(p + n, 0, 4);

    return n + 4;
}


int
bb_conn_send_text(bb_conn_t *c, const u_char *data, size_t len)
{
    size_t  n;

    bb_scratch.pos = 0;
    bb_scratch.len = 0;

    if (bb_buf_reserve(&bb_scratch, len + 14) != BB_OK) {
        bb_fatal("out of memory");
    }

    n = bb_ws_frame_header(bb_scratch.data, len);
    memcpy(bb_scratch.data + n, data, len);

    return bb_conn_send(c, bb_scratch.data, n + len);
}


/*
 * Sends "data" (which must stay valid) once the events of this poll round
 * are handled: the receive times of the round are then taken before the
 * tool spends time on sending, which would otherwise be counted in the
 * latency of the responses handled after it.
 */

void
bb_conn_defer(bb_conn_t *c, const u_char *data, size_t len)
{
    if (c->deferred == NULL) {
        if (bb_ndeferred == bb_max_conns) {
            (void) bb_conn_send(c, data, len);
            return;
        }

        bb_deferred[bb_ndeferred++] = c;
    }

    c->deferred = data;
    c->deferred_len = len;
}


static void
bb_net_flush_deferred(void)
{
    uint32_t      i, n;
    bb_conn_t    *c;
    const u_char *data;

    n = bb_ndeferred;
    bb_ndeferred = 0;

    for (i = 0; i < n; i++) {
        c = bb_deferred[i];
        data = c->deferred;

        if (data == NULL || c->fd == -1) {
            continue;
        }

        c->deferred = NULL;
        (void) bb_conn_send(c, data, c->deferred_len);
    }
}


int
bb_net_poll(int timeout_ms)
{
    int          i, n;
    uint32_t     id, gen;
    uint64_t     u;
    bb_conn_t   *c;

    n = epoll_wait(bb_epfd, bb_events, BB_MAX_EVENTS, timeout_ms);

    if (n == -1) {
        if (errno == EINTR) {
            return 0;
        }

        bb_fatal("epoll_wait() failed: %s", strerror(errno));
    }

    for (i = 0; i < n; i++) {
        u = bb_events[i].data.u64;
        id = (uint32_t) u;
        gen = (uint32_t) (u >> 32);

        c = bb_conns[id];

        if (c == NULL || c->gen != gen || c->fd == -1) {
            continue;
        }

        bb_conn_event(c, bb_events[i].events);
    }

    bb_net_flush_deferred();

    return n;
}


/* at exit: resets, so that nothing is left in TIME_WAIT */

void
bb_net_close_all(void)
{
    uint32_t  i;

    for (i = 1; i <= bb_nconns; i++) {
        if (bb_conns[i]) {
            bb_conn_close(bb_conns[i]);
        }
    }
}


static void
bb_conn_event(bb_conn_t *c, uint32_t events)
{
    uint32_t  gen;

    gen = c->gen;

    if (events & EPOLLOUT) {
        bb_conn_write(c);

        if (c->gen != gen) {
            return;
        }
    }

    if (events & (EPOLLIN|EPOLLHUP|EPOLLERR)) {
        if (c->connecting) {
            bb_conn_write(c);

            if (c->gen != gen) {
                return;
            }
        }

        bb_conn_read(c);
    }
}


static void
bb_conn_write(bb_conn_t *c)
{
    int        err;
    ssize_t    n;
    socklen_t  len;
    unsigned   opened;

    opened = 0;

    if (c->connecting) {
        err = 0;
        len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1
            || err != 0)
        {
            bb_conn_fail(c);
            return;
        }

        c->connecting = 0;
        opened = !c->upgrading;
    }

    while (c->out.pos < c->out.len) {
        n = send(c->fd, c->out.data + c->out.pos, c->out.len - c->out.pos,
                 MSG_NOSIGNAL);

        if (n > 0) {
            c->out.pos += (size_t) n;
            continue;
        }

        if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }

        bb_conn_fail(c);
        return;
    }

    if (c->out.pos == c->out.len) {
        c->out.pos = 0;
        c->out.len = 0;

        if (c->writing) {
            c->writing = 0;

            if (bb_conn_epoll(c, EPOLL_CTL_MOD, EPOLLIN) != BB_OK) {
                bb_conn_fail(c);
                return;
            }
        }
    }

    if (opened && c->open) {
        c->open(c);
    }
}


static void
bb_conn_read(bb_conn_t *c)
{
    size_t   room;
    ssize_t  n;

    for ( ;; ) {
        if (bb_buf_reserve(&c->in, BB_READ_CHUNK) != BB_OK) {
            bb_fatal("out of memory");
        }

        room = c->in.size - c->in.len;

        n = recv(c->fd, c->in.data + c->in.len, room, 0);

        if (n > 0) {
            c->in.len += (size_t) n;

            if (bb_conn_process(c) != BB_OK) {
                return;
            }

            if ((size_t) n < room) {
                return;
            }

            continue;
        }

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1 && errno == EAGAIN) {
            return;
        }

        bb_conn_fail(c);
        return;
    }
}


/* handles every complete message read; BB_DONE if "c" was closed */

static int
bb_conn_process(bb_conn_t *c)
{
    int  rc;

    for ( ;; ) {
        if (c->in.pos == c->in.len) {
            c->in.pos = 0;
            c->in.len = 0;
            return BB_OK;
        }

        if (c->websocket) {
            rc = bb_ws_frame(c);

        } else {
            rc = bb_http_response(c);
        }

        if (rc == BB_AGAIN) {
            return BB_OK;
        }

        if (rc == BB_ERROR) {
            bb_conn_fail(c);
            return BB_DONE;
        }

        if (rc == BB_DONE) {
            return BB_DONE;
        }
    }
}


static int
bb_http_response(bb_conn_t *c)
{
    int        status, chunked, close_after, have_length;
    size_t     n, hlen, length, consumed, body;
    u_char    *p, *h, *eol, *end, *v;
    uint32_t   gen;

    p = c->in.data + c->in.pos;
    n = c->in.len - c->in.pos;

    end = memmem(p, n, "\r\n\r\n", 4);

    if (end == NULL) {
        return n > BB_MAX_HEADER ? BB_ERROR : BB_AGAIN;
    }

    hlen = (size_t) (end - p) + 4;

    if (hlen < 16 || memcmp(p, "HTTP/1.", 7) != 0
        || p[9] < '1' || p[9] > '5')
    {
        return BB_ERROR;
    }

    status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');

    chunked = 0;
    close_after = 0;
    have_length = 0;
    length = 0;

    h = memchr(p, '\n', hlen) + 1;

    while (h < end) {
        eol = memchr(h, '\r', (size_t) (end + 2 - h));

        if (eol - h > 15 && bb_strncasecmp(h, "content-length:", 15) == 0) {
            have_length = 1;
            length = 0;

            for (v = h + 15; v < eol; v++) {
                if (*v >= '0' && *v <= '9') {
                    length = length * 10 + (size_t) (*v - '0');
                }
            }

        } else if (eol - h > 18
                   && bb_strncasecmp(h, "transfer-encoding:", 18) == 0)
        {
            chunked = memmem(h, (size_t) (eol - h), "chunked", 7) != NULL;

        } else if (eol - h > 11
                   && bb_strncasecmp(h, "connection:", 11) == 0)
        {
            close_after = memmem(h, (size_t) (eol - h), "close", 5) != NULL;
        }

        h = eol + 2;
    }

    if (status == 101) {
        if (!c->upgrading) {
            return BB_ERROR;
        }

        c->in.pos += hlen;
        c->upgrading = 0;
        c->websocket = 1;

        gen = c->gen;

        if (c->open) {
            c->open(c);
        }

        return c->gen == gen ? BB_OK : BB_DONE;
    }

    if (c->upgrading) {
        /* the upgrade was refused */
        return BB_ERROR;
    }

    if (chunked) {
        if (bb_http_chunked(p + hlen, n - hlen, &body, &consumed)
            == BB_AGAIN)
        {
            return BB_AGAIN;
        }

    } else if (have_length) {
        if (n - hlen < length) {
            if (bb_buf_reserve(&c->in, length - (n - hlen)) != BB_OK) {
                bb_fatal("out of memory");
            }

            return BB_AGAIN;
        }

        body = length;
        consumed = length;

    } else if (status == 204 || status == 304) {
        body = 0;
        consumed = 0;

    } else {
        /* a body up to the close is not supported */
        return BB_ERROR;
    }

    c->in.pos += hlen + consumed;

    if (close_after) {
        c->close_after = 1;
    }

    gen = c->gen;

    c->handler(c, status, p + hlen, body);

    if (c->gen != gen) {
        return BB_DONE;
    }

    if (c->close_after) {
        /* the server closes: the owner reconnects if it wants */
        bb_conn_fail(c);
        return BB_DONE;
    }

    return BB_OK;
}


/*
 * A chunked body, decoded in place once it is complete: the first pass
 * only checks that every chunk is there.
 */

static int
bb_http_chunked(u_char *p, size_t n, size_t *body, size_t *consumed)
{
    int       pass;
    size_t    size;
    u_char   *q, *last, *dst;

    last = p + n;

    for (pass = 0; pass < 2; pass++) {
        q = p;
        dst = p;

        for ( ;; ) {
            size = 0;

            while (q < last && *q != '\r') {
                if (*q >= '0' && *q <= '9') {
                    size = size * 16 + (size_t) (*q - '0');

                } else if ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'f') {
                    size = size * 16 + (size_t) ((*q | 0x20) - 'a' + 10);

                } else if (*q == ';') {
                    break;
                }

                q++;
            }

            if (q >= last) {
                return BB_AGAIN;
            }

            q = memchr(q, '\n', (size_t) (last - q));
            if (q == NULL) {
                return BB_AGAIN;
            }

            q++;

            if (size == 0) {
                if (last - q < 2) {
                    return BB_AGAIN;
                }

                q += 2;
                break;
            }

            if ((size_t) (last - q) < size + 2) {
                return BB_AGAIN;
            }

            if (pass) {
                memmove(dst, q, size);
            }

            dst += size;
            q += size + 2;
        }

        *body = (size_t) (dst - p);
        *consumed = (size_t) (q - p);
    }

    return BB_OK;
}


static int
bb_ws_frame(bb_conn_t *c)
{
    int        fin, opcode;
    size_t     n, hlen, i;
    u_char    *p, *payload, *mask, pong[14 + 125];
    uint64_t   len;
    uint32_t   gen;

    p = c->in.data + c->in.pos;
    n = c->in.len - c->in.pos;

    if (n < 2) {
        return BB_AGAIN;
    }

    fin = p[0] & 0x80;
    opcode = p[0] & 0x0f;
    len = p[1] & 0x7f;
    hlen = 2;

    if (len == 126) {
        if (n < 4) {
            return BB_AGAIN;
        }

        len = ((uint64_t) p[2] << 8) | p[3];
        hlen = 4;

    } else if (len == 127) {
        if (n < 10) {
            return BB_AGAIN;
        }

        len = 0;

        for (i = 2; i < 10; i++) {
            len = (len << 8) | p[i];
        }

        hlen = 10;
    }

    mask = NULL;

    if (p[1] & 0x80) {
        mask = p + hlen;
        hlen += 4;
    }

    if (len > (1ULL << 30)) {
        return BB_ERROR;
    }

    if (n < hlen + len) {
        if (bb_buf_reserve(&c->in, hlen + len - n) != BB_OK) {
            bb_fatal("out of memory");
        }

        return BB_AGAIN;
    }

    payload = p + hlen;

    if (mask) {
        for (i = 0; i < len; i++) {
            payload[i] ^= mask[i % 4];
        }
    }

    c->in.pos += hlen + len;

    gen = c->gen;

    switch (opcode) {

    case 0x1:
    case 0x0:
        if (opcode == 0x1 && fin && c->frag.len == 0) {
            c->handler(c, 0, payload, len);
            break;
        }

        if (bb_buf_reserve(&c->frag, len) != BB_OK) {
            bb_fatal("out of memory");
        }

        memcpy(c->frag.data + c->frag.len, payload, len);
        c->frag.len += len;

        if (fin) {
            n = c->frag.len;
            c->frag.len = 0;
            c->handler(c, 0, c->frag.data, n);
        }

        break;

    case 0x8:
        return BB_ERROR;

    case 0x9:
        if (len > 125) {
            return BB_ERROR;
        }

        pong[0] = 0x8a;
        pong[1] = (u_char) (0x80 | len);
        memset(pong + 2, 0, 4);
        memcpy(pong + 6, payload, len);

        if (bb_conn_send(c, pong, 6 + len) != BB_OK) {
            return BB_DONE;
        }

        break;

    default:
        /* binary messages and pongs are ignored */
        break;
    }

    return c->gen == gen ? BB_OK : BB_DONE;
}


static int
bb_conn_epoll(bb_conn_t *c, int op, uint32_t events)
{
    struct epoll_event  ev;

    ev.events = events;
    ev.data.u64 = ((uint64_t) c->gen << 32) | c->id;

    return epoll_ctl(bb_epfd, op, c->fd, &ev) == 0 ? BB_OK : BB_ERROR;
}


static int
bb_strncasecmp(const u_char *s1, const char *s2, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if ((s1[i] | 0x20) != (u_char) (s2[i] | 0x20)) {
            return 1;
        }
    }

    return 0;
}
