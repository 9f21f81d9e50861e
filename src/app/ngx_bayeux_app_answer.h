
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_APP_ANSWER_H_INCLUDED_
#define _NGX_BAYEUX_APP_ANSWER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_grants.h"


/*
 * The body of the application's answer: empty, or a JSON object of
 * which these members are read (others are ignored):
 *
 *   "user"       a string        handshake: the session's user
 *   "subscribe"  [strings]       handshake: channel patterns granted
 *   "publish"    [strings]       handshake: channel patterns granted
 *   "ext"        an object       handshake: the reply's ext
 *   "data"       any JSON value  publish: published instead of the
 *                                client's data
 *   "reason"     a string        a denial's reason
 */

typedef struct {
    ngx_bayeux_grants_t        grants;
    ngx_str_t                  ext;         /* JSON text, empty: absent */
    ngx_str_t                  data;        /* JSON text, empty: absent */
    ngx_str_t                  reason;
} ngx_bayeux_app_answer_t;


/*
 * NGX_OK; NGX_DECLINED: not such an object, *why says what is wrong;
 * NGX_ERROR: no memory.
 */
ngx_int_t ngx_bayeux_app_answer_parse(ngx_str_t *body, ngx_pool_t *pool,
    ngx_bayeux_app_answer_t *a, const char **why);

/* the same for a body that is any one JSON value, into a->data */
ngx_int_t ngx_bayeux_app_answer_value(ngx_str_t *body, ngx_pool_t *pool,
    ngx_bayeux_app_answer_t *a, const char **why);


#endif /* _NGX_BAYEUX_APP_ANSWER_H_INCLUDED_ */
