
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REPLY_H_INCLUDED_
#define _NGX_BAYEUX_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_batch.h"


/*
 * The JSON the batch answers with: a reply per message, shaped by its
 * kind (ngx_bayeux_meta_t), and a published message as its subscribers
 * receive it.
 */

ngx_int_t ngx_bayeux_reply_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);
void ngx_bayeux_refusal_set(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_refusal_t *refusal, char *error, ngx_uint_t with);
ngx_int_t ngx_bayeux_reply(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_int_t rc, ngx_str_t *out);
ngx_int_t ngx_bayeux_reply_refused(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_refusal_t *refusal, ngx_str_t *out);
ngx_int_t ngx_bayeux_reply_connect(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_wake_e reason, ngx_str_t *out);
ngx_int_t ngx_bayeux_delivery(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_str_t *out);
ngx_int_t ngx_bayeux_reply_ext_add(ngx_bayeux_batch_t *b, char *name,
    ngx_str_t *value);


#endif /* _NGX_BAYEUX_REPLY_H_INCLUDED_ */
