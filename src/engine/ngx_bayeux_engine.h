
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_ENGINE_H_INCLUDED_
#define _NGX_BAYEUX_ENGINE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


/* a browser id (the BAYEUX_BROWSER cookie): hex digits */
#define NGX_BAYEUX_BROWSER_ID_LEN     32


/* a result of an operation (op->rc), beside nginx's own codes */
#define NGX_BAYEUX_LIMIT     -100

/*
 * connect: the session's queue overflowed (bayeux_max_queue,
 * bayeux_max_queue_size); the engine ended the session
 */
#define NGX_BAYEUX_OVERFLOW  -101


/*
 * The engine interface.  Every operation is asynchronous: it completes by
 * calling op->handler, which an engine may do before the call returns
 * (the memory engine does) or later from the event loop (the Redis
 * engine does).  The caller must not touch "op" between the call and the
 * handler, and must cope with both.  During the call an engine may call
 * the handlers of other operations and waiters, which may end their
 * requests or close their connection; it may still use "op" afterwards
 * (until its handler returns), so the protocol keeps op's memory from
 * the call until both the call and the handler are over (the lifetime
 * rule of ngx_bayeux_batch_t), and an engine always completes an
 * operation it started, exactly once.  An engine does not touch a waiter
 * after calling its handler.
 */

typedef struct ngx_bayeux_op_s      ngx_bayeux_op_t;
typedef struct ngx_bayeux_waiter_s  ngx_bayeux_waiter_t;

typedef void (*ngx_bayeux_op_handler_pt)(ngx_bayeux_op_t *op);


typedef enum {
    NGX_BAYEUX_WAKE_MESSAGES = 0,    /* messages arrived */
    NGX_BAYEUX_WAKE_TIMEOUT,         /* released by its holder */
    NGX_BAYEUX_WAKE_SUPERSEDED,      /* a newer connect took its place */
    NGX_BAYEUX_WAKE_DISCONNECTED,    /* the session is gone */
    NGX_BAYEUX_WAKE_ERROR,           /* the engine failed */
    NGX_BAYEUX_WAKE_OVERFLOW,        /* its queue overflowed: it ended */
    NGX_BAYEUX_WAKE_INACTIVE         /* bayeux_max_inactivity: it ended */
} ngx_bayeux_wake_e;


/*
 * A parked /meta/connect.  The engine calls "handler" exactly once, with
 * the messages for the session, unless the holder cancels it first.
 */

typedef void (*ngx_bayeux_waiter_handler_pt)(ngx_bayeux_waiter_t *w,
    ngx_bayeux_wake_e reason);

struct ngx_bayeux_waiter_s {
    ngx_bayeux_waiter_handler_pt   handler;
    void                          *data;
    ngx_pool_t                    *pool;        /* for "messages" */
    ngx_array_t                   *messages;    /* ngx_str_t, JSON texts */
    void                          *engine_data;

    /*
     * The ack extension: the last batch the client says it received, or
     * NGX_BAYEUX_NO_ACK.  A connect that acknowledges makes the engine
     * forget the messages of the batches up to "ack" and keep what it
     * gives until a later connect acknowledges it: every message not
     * acknowledged is given again, first, in order, and the new ones
     * become the batch numbered "batch" (the session's last batch, 0 if
     * none yet), which the engine sets when it gives messages.  A connect
     * that does not acknowledge takes what it is given for good.
     */
    ngx_int_t                      ack;
    ngx_uint_t                     batch;

    /*
     * set by the protocol at each connect: the connect's deliveries are
     * pushed while it stays held (a websocket's), so that an engine may
     * give it messages as they come and take it back at once when the
     * handler parks it again (the Redis engine's held sessions)
     */
    unsigned                       stream:1;
};


#define NGX_BAYEUX_NO_ACK  -1


struct ngx_bayeux_op_s {
    ngx_bayeux_endpoint_t         *endpoint;
    ngx_pool_t                    *pool;        /* results go here */
    ngx_log_t                     *log;

    ngx_str_t                      client_id;   /* out for handshake */

    /*
     * the browser the request comes from: the handshake records it in
     * the session, which the other operations then find only when they
     * name the same one; empty: any (bayeux_trust_client_session on)
     */
    ngx_str_t                      browser;

    /*
     * what the session was granted, as text the engine does not read:
     * the handshake keeps it with the session, touch gives it back
     * (empty: nothing)
     */
    ngx_str_t                      grants;

    /*
     * the session's user: the handshake keeps it and counts the session
     * as the user's; deliver and count name a user by it
     */
    ngx_str_t                      user;

    ngx_str_t                      channel;     /* publish */
    ngx_str_t                      message;     /* publish: JSON text */

    /*
     * publish, deliver: the message is lazy (bayeux_lazy_channel): it
     * does not wake a held connect, but goes after
     * bayeux_max_lazy_timeout, or with the session's next message that
     * is not lazy, or when the connect's hold time is over
     */
    ngx_uint_t                     lazy;
    ngx_array_t                   *channels;    /* (un)subscribe */

    /* publish, deliver: sessions reached; count: what was counted */
    ngx_uint_t                     count;

    ngx_msec_t                     hold;        /* connect: 0: no wait */
    ngx_bayeux_waiter_t           *waiter;      /* connect: ack, batch too */
    ngx_array_t                   *messages;    /* connect: out */

    /*
     * NGX_OK, NGX_DECLINED (unknown session), NGX_AGAIN (connect parked),
     * NGX_BAYEUX_LIMIT (subscribe: the session would have more than
     * bayeux_max_subscriptions; nothing of it was applied),
     * NGX_BAYEUX_OVERFLOW (connect: the session's queue overflowed since
     * its last connect; the engine ended it), NGX_BUSY (engine
     * unavailable), NGX_ERROR
     */
    ngx_int_t                      rc;

    /*
     * the operation is the client's activity (bayeux_max_inactivity):
     * the engine notes the time for the session named; a connect never is
     */
    unsigned                       active:1;

    ngx_bayeux_op_handler_pt       handler;
    void                          *data;
};


struct ngx_bayeux_engine_s {
    ngx_str_t                      name;
    ngx_uint_t                     multi_worker;

    ngx_int_t  (*init_endpoint)(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep);
    ngx_int_t  (*init_process)(ngx_cycle_t *cycle,
                               ngx_bayeux_endpoint_t *ep);
    void       (*exit_process)(ngx_cycle_t *cycle,
                               ngx_bayeux_endpoint_t *ep);

    void       (*handshake)(ngx_bayeux_op_t *op);
    void       (*connect)(ngx_bayeux_op_t *op);
    void       (*subscribe)(ngx_bayeux_op_t *op);
    void       (*unsubscribe)(ngx_bayeux_op_t *op);
    /*
     * op->message on op->channel; op->client_id is the publisher's
     * session, or empty for the server's own (the publisher location):
     * no session is checked then, and no one is the publisher
     */
    void       (*publish)(ngx_bayeux_op_t *op);

    /*
     * op->message to one session (op->client_id, any browser) or to
     * every session of a user (op->user), whatever they subscribed to;
     * NGX_DECLINED: no such session
     */
    void       (*deliver)(ngx_bayeux_op_t *op);

    /* op->count: the sessions of op->user, or the subscribers of op->channel */
    void       (*count)(ngx_bayeux_op_t *op);
    void       (*disconnect)(ngx_bayeux_op_t *op);

    /*
     * checks that the session exists (a /service message), and gives
     * what it was granted at handshake (op->grants, in op->pool)
     */
    void       (*touch)(ngx_bayeux_op_t *op);

    /*
     * ends a parked connect: its handler is called, now or later, with
     * what is queued (NGX_BAYEUX_WAKE_MESSAGES) or nothing
     * (NGX_BAYEUX_WAKE_TIMEOUT)
     */
    void       (*release)(ngx_bayeux_endpoint_t *ep,
                          ngx_bayeux_waiter_t *w);

    /*
     * forgets a parked connect whose client went away, also after
     * release(): the handler is never called afterwards, and messages
     * the engine had taken for it are queued again, in order
     */
    void       (*cancel)(ngx_bayeux_endpoint_t *ep, ngx_bayeux_waiter_t *w);
};


ngx_bayeux_engine_t *ngx_bayeux_engine_find(ngx_str_t *name);
ngx_int_t ngx_bayeux_random_hex(u_char *dst, size_t bytes);
ngx_int_t ngx_bayeux_client_id(u_char *buf);


#endif /* _NGX_BAYEUX_ENGINE_H_INCLUDED_ */
