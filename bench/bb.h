
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _BB_H_INCLUDED_
#define _BB_H_INCLUDED_


#define _GNU_SOURCE

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>


#define BB_OK          0
#define BB_ERROR      -1
#define BB_AGAIN      -2
#define BB_DONE       -4


/* a latency histogram in microseconds, log-linear, about 1.5 % wide */

#define BB_HIST_SUB      128
#define BB_HIST_BUCKETS  (BB_HIST_SUB + 57 * (BB_HIST_SUB / 2))

typedef struct {
    uint64_t                  count[BB_HIST_BUCKETS];
    uint64_t                  total;
    uint64_t                  max;
} bb_hist_t;


typedef struct {
    u_char                   *data;
    size_t                    pos;         /* first byte not yet used */
    size_t                    len;         /* bytes held */
    size_t                    size;
} bb_buf_t;


typedef struct bb_conn_s  bb_conn_t;

/*
 * Called once per complete HTTP response (status, body) or websocket
 * text message (status 0).  The handler may send on the connection or
 * close it.
 */
typedef void (*bb_conn_handler_pt)(bb_conn_t *c, int status, u_char *body,
    size_t len);
typedef void (*bb_conn_event_pt)(bb_conn_t *c);

struct bb_conn_s {
    int                       fd;
    uint32_t                  id;          /* index in the registry */
    uint32_t                  gen;         /* bumped by every close */
    int                       target;

    bb_buf_t                  in;
    bb_buf_t                  out;
    bb_buf_t                  frag;        /* a fragmented ws message */

    bb_conn_handler_pt        handler;
    bb_conn_event_pt          open;        /* connected (and upgraded) */
    bb_conn_event_pt          error;       /* failed or closed by peer */
    void                     *data;

    const u_char             *deferred;    /* sent after the poll round */
    size_t                    deferred_len;

    unsigned                  connecting:1;
    unsigned                  upgrading:1;
    unsigned                  websocket:1;
    unsigned                  writing:1;   /* EPOLLOUT wanted */
    unsigned                  close_after:1;
};


typedef struct {
    struct sockaddr_in        addr;
    char                      host[64];    /* for the Host header */
} bb_target_t;


/* bb_net.c */

int bb_net_init(int max_conns);
int bb_net_add_target(const char *spec);
int bb_net_targets(void);
bb_target_t *bb_net_target(int i);
int bb_conn_open(bb_conn_t *c, int target, const char *ws_path);
void bb_conn_close(bb_conn_t *c);
int bb_conn_send(bb_conn_t *c, const u_char *data, size_t len);
int bb_conn_send_text(bb_conn_t *c, const u_char *data, size_t len);
void bb_conn_defer(bb_conn_t *c, const u_char *data, size_t len);
size_t bb_ws_frame_header(u_char *p, size_t len);
int bb_net_poll(int timeout_ms);
void bb_net_close_all(void);
int bb_buf_reserve(bb_buf_t *b, size_t need);

uint64_t bb_now(void);
void bb_fatal(const char *fmt, ...);


/* bb_hist.c */

void bb_hist_add(bb_hist_t *h, uint64_t v);
uint64_t bb_hist_percentile(bb_hist_t *h, double p);


#endif /* _BB_H_INCLUDED_ */
