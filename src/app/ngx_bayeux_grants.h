
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_GRANTS_H_INCLUDED_
#define _NGX_BAYEUX_GRANTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * What a session was given at handshake, by the application's answer to
 * bayeux_handshake_request or by a token (bayeux_jwt_key): the user it
 * acts for, and the channel patterns ("/chat/ **", "/user/alice/ *"
 * without the blanks, or a plain channel) it may subscribe to and publish
 * on without asking the application again.  The engine keeps it with the
 * session, as text (ngx_bayeux_grants_write()), so that any worker finds
 * it.
 */

typedef struct {
    ngx_str_t                  user;        /* empty: none */
    ngx_array_t               *subscribe;   /* ngx_str_t, or NULL */
    ngx_array_t               *publish;     /* ngx_str_t, or NULL */
} ngx_bayeux_grants_t;


/* a user name goes into headers and logs: no control characters */
#define NGX_BAYEUX_USER_MAX_LEN       256

#define NGX_BAYEUX_GRANT_SUBSCRIBE    's'
#define NGX_BAYEUX_GRANT_PUBLISH      'p'


/* NGX_DECLINED: a user or a pattern that cannot be granted, *why says */
ngx_int_t ngx_bayeux_grants_check(ngx_bayeux_grants_t *g, const char **why);

/* the text the engine keeps: the user, then one line per pattern */
ngx_int_t ngx_bayeux_grants_write(ngx_bayeux_grants_t *g, ngx_pool_t *pool,
    ngx_str_t *text);

/* from that text */
void ngx_bayeux_grants_user(ngx_str_t *text, ngx_str_t *user);
ngx_uint_t ngx_bayeux_grants_allow(ngx_str_t *text, u_char what,
    ngx_str_t *channel);


#endif /* _NGX_BAYEUX_GRANTS_H_INCLUDED_ */
