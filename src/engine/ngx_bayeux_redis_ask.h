
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_ASK_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_ASK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux_redis_adapter.h"


/*
 * Where is the primary?  Asked of a list of nodes in turn (sentinels, or
 * a cluster's seeds), the first that answers asked first the next time:
 * "found" gets the primary's address, or NULL and why no node could say.
 * The user of it sends its question once "query" connects, and gives the
 * answer with ngx_bayeux_redis_ask_answer() or closes "query" with why
 * not.
 */

typedef void (*ngx_bayeux_redis_found_pt)(void *data, ngx_addr_t *primary,
    u_char *error);


typedef struct {
    ngx_array_t                   *nodes;       /* ngx_addr_t */
    char                          *what;        /* "sentinel"... */
    ngx_str_t                      label;       /* of the primary, logged */
    ngx_log_t                     *log;

    ngx_bayeux_redis_found_pt      found;
    void                          *data;

    ngx_bayeux_redis_conn_t        query;

    ngx_uint_t                     current;     /* asked first */
    ngx_uint_t                     tries;

    ngx_event_t                    next;

    /* the primary last named, and "host:port (label)" */
    ngx_addr_t                     primary;
    ngx_sockaddr_t                 sockaddr;
    ngx_str_t                      addr;
    u_char                        *addr_data;

    u_char                         error[160];

    unsigned                       asking:1;
    unsigned                       answered:1;
    unsigned                       exiting:1;
} ngx_bayeux_redis_ask_t;


/* configuration time; "addr" is the label until a primary is named */
ngx_int_t ngx_bayeux_redis_ask_create(ngx_bayeux_redis_ask_t *a,
    ngx_pool_t *pool, ngx_array_t *nodes, char *what, ngx_str_t *label);

/* the worker: timeouts as "proto" has them, "connected" asks */
void ngx_bayeux_redis_ask_init(ngx_bayeux_redis_ask_t *a, ngx_log_t *log,
    ngx_bayeux_redis_conn_t *proto, ngx_bayeux_redis_conn_pt connected,
    void *data);
void ngx_bayeux_redis_ask_start(ngx_bayeux_redis_ask_t *a);
void ngx_bayeux_redis_ask_close(ngx_bayeux_redis_ask_t *a);

/* the node's answer, an address (not a name) and a port; NULL or why not */
char *ngx_bayeux_redis_ask_answer(ngx_bayeux_redis_ask_t *a, u_char *host,
    size_t len, ngx_int_t port);


#endif /* _NGX_BAYEUX_REDIS_ASK_H_INCLUDED_ */
