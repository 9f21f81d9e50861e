
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_SESSION_H_INCLUDED_
#define _NGX_BAYEUX_SESSION_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


/*
 * What a worker knows of a session between its messages, so as not to
 * ask the engine again: what it was granted at handshake (the text the
 * engine keeps, op->grants).  Grants do not change during a session,
 * and the engine still checks the session itself at every operation,
 * so what is known here is never stale.  A websocket's lasts as long as
 * its connection, which serves one session; a polling request's as
 * long as its batch.
 */

typedef struct {
    ngx_str_t                  client_id;   /* whose; empty: nothing known */
    ngx_str_t                  grants;      /* ngx_alloc(), or in "pool" */
    size_t                     size;
    ngx_pool_t                *pool;        /* a batch's: grants copied in */
    u_char                     id[NGX_BAYEUX_CLIENT_ID_LEN];
} ngx_bayeux_session_known_t;


/* freed with "pool"; NULL: no memory */
ngx_bayeux_session_known_t *ngx_bayeux_session_known_create(
    ngx_pool_t *pool);

/* the same, for as long as a batch: what it learns goes into "pool" */
ngx_bayeux_session_known_t *ngx_bayeux_session_known_pooled(
    ngx_pool_t *pool);

/* NGX_OK, or NGX_ERROR (no memory: nothing is known then) */
ngx_int_t ngx_bayeux_session_learn(ngx_bayeux_session_known_t *k,
    ngx_str_t *client_id, ngx_str_t *grants, ngx_log_t *log);

/* the grants of that session if known, else NULL */
ngx_str_t *ngx_bayeux_session_grants(ngx_bayeux_session_known_t *k,
    ngx_str_t *client_id);


#endif /* _NGX_BAYEUX_SESSION_H_INCLUDED_ */
