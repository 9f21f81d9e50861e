
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
 * on without asking the application again.  The engine keeps it with the session, as text
 * (ngx_bayeux_grants_write()), so that any worker finds it.
 */

typedef struct {
    ngx_str_t                  user;        /* empty: none */
    ngx_array_t               *subscribe;   /* ngx_str_t, or NULL */
    ngx_array_t               *publish;     /* ngx_str_t, or NULL */
} ngx_bayeux_grants_t;


#endif /* _NGX_BAYEUX_GRANTS_H_INCLUDED_ */
