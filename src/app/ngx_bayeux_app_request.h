
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_APP_REQUEST_H_INCLUDED_
#define _NGX_BAYEUX_APP_REQUEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux_batch.h"


/*
 * A question to the application for a message of a batch that waits in
 * an incoming hook: a subrequest "POST uri" with a JSON body, from the
 * request the batch's transport gives (ngx_bayeux_transport_parent()),
 * with the client's request headers.  The status of the answer and its
 * body (up to subrequest_output_buffer_size) are read.  Once the
 * subrequest is over (or the batch was cancelled), the "handler" is
 * called from a posted event, outside nginx's subrequest code: it reads
 * "status" and "body", and resumes the batch.
 */

typedef struct ngx_bayeux_app_request_s  ngx_bayeux_app_request_t;

typedef void (*ngx_bayeux_app_handler_pt)(ngx_bayeux_app_request_t *ar);


struct ngx_bayeux_app_request_s {
    ngx_bayeux_batch_t            *batch;
    ngx_str_t                     *uri;
    ngx_bayeux_app_handler_pt      handler;
    void                          *data;

    /* the message asked about, for the subrequest's variables */
    ngx_bayeux_message_t          *message;
    ngx_str_t                     *grants;

    /*
     * the answer: the application's status, or nginx's for a failure
     * (502 the application down, 504 too slow, 404 no such location),
     * or 0: no answer (no subrequest could be made, or cancelled)
     */
    ngx_uint_t                     status;
    ngx_str_t                      body;        /* in the batch's pool */

    ngx_event_t                    resume;
    ngx_event_t                    run;         /* starts the subrequest */
    ngx_connection_t              *connection;  /* the parent's */

    unsigned                       answered:1;
    unsigned                       cancelled:1;
    unsigned                       not_http:1;  /* garbage read as HTTP/0.9 */
    unsigned                       no_memory:1;
};


/*
 * NGX_AGAIN: the handler will be called; NGX_ERROR: no subrequest was
 * made, and it will not.  "ar" lives as long as the batch (b->pool).
 */
ngx_int_t ngx_bayeux_app_request(ngx_bayeux_app_request_t *ar,
    ngx_str_t *body);

/* a notice, that nothing waits for, from a request of the server's own */
ngx_int_t ngx_bayeux_app_notice(ngx_http_request_t *parent, ngx_str_t *uri,
    ngx_str_t *body);

/* for a hook's cancel handler: the handler is still called, once */
void ngx_bayeux_app_request_cancel(ngx_bayeux_app_request_t *ar);


#endif /* _NGX_BAYEUX_APP_REQUEST_H_INCLUDED_ */
