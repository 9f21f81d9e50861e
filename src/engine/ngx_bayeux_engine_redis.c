
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_sha1.h>
#include <sys/random.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_engine_redis.h"
#include "ngx_bayeux_redis_adapter.h"
#include "ngx_bayeux_redis_ssl.h"
#include "ngx_bayeux_redis_cluster.h"
#include "ngx_bayeux_redis_held.h"
#include "ngx_bayeux_redis_sentinel.h"
#include "ngx_bayeux_redis_shards.h"
#include "ngx_bayeux_redis_url.h"
#include "ngx_bayeux_stats.h"

/*
 * ngx_bayeux_redis_script: the text of ngx_bayeux_redis.lua, made a C
 * string by config when nginx is configured
 */
#include "ngx_bayeux_redis_lua.h"


/*
 * The Redis engine keeps every session and subscription of an endpoint in
 * Redis, so that any worker of any host can serve any request.  A worker
 * holds nothing but its parked /meta/connect requests, and what comes for
 * the long-polling sessions it holds between their connects (below).
 *
 * Keys, under the prefix P (see docs/cluster.md; on a Redis Cluster the
 * prefix is a hash tag, "{bayeux:}", so that all are in one slot):
 *
 *     P s:<id>    hash: c (first connect done), w and t (the worker
 *                 channel and token of the parked connect), o (queue full)
 *     P q:<id>    list: the messages queued for the session
 *     P S:<id>    set: the channels the session subscribed to
 *     P c:<name>  set: the sessions subscribed to a channel or pattern
 *     P H:<name>  set: the same, held by a worker (below)
 *     P l:<name>  sorted set: the messages for those, by sequence number
 *
 * The session hash lives interval + max_interval (ttl), renewed by every
 * connect and, while a connect is parked, by the worker holding it.  The
 * queue, the subscriptions and the channel sets get 2 x ttl and are
 * renewed only when that runs low, so that they always outlive the hash
 * (see the script).  A channel set lives as long as its longest-lived
 * subscriber; entries of sessions that expired are removed by the next
 * publish.
 *
 * Each worker subscribes to its own channel, P w:<host>:<pid>:<random>.
 * A publish appends the message to the queue of every subscriber and
 * publishes, to every worker that parked a connect for one of them, the
 * id and token of those connects.  The worker then takes the queue.
 *
 * A connect that stays parked while its deliveries are pushed (the
 * waiter's "stream") has its session held by its worker: a publish puts
 * the message once into the log of the channel and once on the stream, P
 * N, which every worker reads on the same connection as its own channel,
 * and the worker pushes it to the sessions it holds.  Whatever ends the
 * hold names the last message given (the "cursor"), and the script
 * queues what was logged after it.  A long-polling connect's session
 * stays held between connects: the worker keeps the stream's messages for
 * it, answers or parks its next connect without a command, and writes the
 * cursor of each reply ("gv") before the reply leaves, once its stream
 * has brought what Redis ran for the session before the "gv".
 * Everything is done by one Lua script, so every operation costs one
 * round trip and is atomic (ngx_bayeux_redis.lua).  The connects of one
 * event loop iteration, and the sessions named by one notification, share
 * one script call.
 */


#define NGX_BAYEUX_REDIS_DOWN          0
#define NGX_BAYEUX_REDIS_CONNECTING    1
#define NGX_BAYEUX_REDIS_UP            2

/* the kinds of command: indexes of ngx_bayeux_redis_kinds[] */

#define NGX_BAYEUX_REDIS_HANDSHAKE     0
#define NGX_BAYEUX_REDIS_CONNECT       1
#define NGX_BAYEUX_REDIS_SUBSCRIBE     2
#define NGX_BAYEUX_REDIS_UNSUBSCRIBE   3
#define NGX_BAYEUX_REDIS_PUBLISH       4
#define NGX_BAYEUX_REDIS_DISCONNECT    5
#define NGX_BAYEUX_REDIS_TOUCH         6
#define NGX_BAYEUX_REDIS_TAKE          7
#define NGX_BAYEUX_REDIS_UNPARK        8
#define NGX_BAYEUX_REDIS_PUT_BACK      9
#define NGX_BAYEUX_REDIS_REFRESH       10
#define NGX_BAYEUX_REDIS_CONNECT_BATCH 11
#define NGX_BAYEUX_REDIS_DELIVER       12
#define NGX_BAYEUX_REDIS_COUNT         13
#define NGX_BAYEUX_REDIS_SWEEP         14
#define NGX_BAYEUX_REDIS_LAZY          15
#define NGX_BAYEUX_REDIS_GIVEN         16
#define NGX_BAYEUX_REDIS_CONFIRM       17

/* the most expired sessions one sweep takes */
#define NGX_BAYEUX_REDIS_SWEEP_MAX     "256"

/* the most lazy deadlines one sweep takes */
#define NGX_BAYEUX_REDIS_LAZY_MAX      "256"

#define NGX_BAYEUX_PARK_CONNECTING     0
#define NGX_BAYEUX_PARK_PARKED         1
#define NGX_BAYEUX_PARK_TAKING         2
#define NGX_BAYEUX_PARK_CONFIRMING     3   /* its "gv" in flight */
#define NGX_BAYEUX_PARK_KEPT           4   /* no connect: between two */

/* which held sessions ngx_bayeux_redis_let_held_go() ends, and how */
#define NGX_BAYEUX_REDIS_HELD_ALL      0
#define NGX_BAYEUX_REDIS_KEPT_IDLE     1
#define NGX_BAYEUX_REDIS_KEPT_ALL      2
#define NGX_BAYEUX_REDIS_KEPT_FORGET   3

/*
 * EVALSHA <sha> 0 <operation> <prefix> <lifetime>; on a Redis Cluster
 * EVALSHA <sha> 1 <prefix> <operation> <prefix> <lifetime>: the prefix, a
 * hash tag, is declared as the script's key, so that Redis routes it (a
 * MOVED reply) and refuses it while its slot migrates (ASK).  The key
 * declared is "<prefix>~", in the same slot, on a primary without sharded
 * pub/sub: the script then notifies with PUBLISH; and it ends in "!" on
 * a node that imports the slot, where the script touches one key per
 * command.
 */
#define NGX_BAYEUX_REDIS_ARGS          6
#define NGX_BAYEUX_REDIS_CLUSTER_ARGS  7
#define NGX_BAYEUX_REDIS_CLUSTER_KEY   3

/* random bytes at the end of a worker's channel name */
#define NGX_BAYEUX_REDIS_CHANNEL_RANDOM  8

#define NGX_BAYEUX_REDIS_BACKOFF_MIN   50
#define NGX_BAYEUX_REDIS_BACKOFF_MAX   1000

#define NGX_BAYEUX_REDIS_REFRESH_MAX   500

/* how often a command asked to wait for a migration is sent again */
#define NGX_BAYEUX_REDIS_ASK_RETRY     100

/* the most connects or takes in one script call, which holds Redis */
#define NGX_BAYEUX_REDIS_CONNECT_MAX   128
#define NGX_BAYEUX_REDIS_TAKE_MAX      128
#define NGX_BAYEUX_REDIS_CONFIRM_MAX   128

/* "<batch>:<messages>:<bytes>," */
#define NGX_BAYEUX_REDIS_BATCH_LEN                                           \
    (2 * NGX_INT_T_LEN + NGX_SIZE_T_LEN + 3)


typedef struct ngx_bayeux_redis_s  ngx_bayeux_redis_t;


/* a /meta/connect held by this worker */

typedef struct {
    ngx_rbtree_node_t              node;        /* key: the token */
    ngx_bayeux_redis_t            *redis;
    ngx_bayeux_waiter_t           *waiter;      /* NULL once cancelled */
    ngx_uint_t                     state;
    ngx_str_t                      token;
    u_char                         token_data[NGX_INT_T_LEN];
    u_char                         id[NGX_BAYEUX_CLIENT_ID_LEN];
    unsigned                       notified:1;
    unsigned                       released:1;

    /* the ack extension: what it was given is kept, not put back */
    unsigned                       kept:1;

    /* it may be held (ngx_bayeux_waiter_t's "stream") */
    unsigned                       stream:1;

    /* a connect of its waiter lets its held session go, with "cursor" */
    unsigned                       handed:1;

    /* a message of the stream after "cursor" was not given to it */
    unsigned                       behind:1;

    /*
     * held in Redis, and neither given to here nor let go yet: until it
     * is, this worker does not write how far it gave the stream
     */
    unsigned                       unsettled:1;

    /*
     * a held session (the script's hold_session()): its subscriptions in
     * the worker's index, and the last message of the stream given to it
     */
    ngx_bayeux_redis_held_t       *held;
    uint64_t                       cursor;

    /*
     * A long-polling connect's held session stays held between its
     * connects: the park outlives its waiter ("KEPT"), keeps the stream's
     * messages for it in "pending", and is found by the session's id when
     * the next connect comes.  Before a reply gives them, "gv" writes the
     * last one given ("confirming") into Redis.
     */
    unsigned                       polling:1;
    unsigned                       indexed:1;   /* in "sessions" */
    unsigned                       queued:1;    /* in "confirms" */

    /*
     * Its "gv" found that Redis ran, before it, a message for the session
     * that this worker had not read yet: the park waits in "catching"
     * until the stream reaches "head", Redis's last then, and its next
     * "gv" is not checked ("read_up").
     */
    unsigned                       catching:1;
    unsigned                       read_up:1;
    uint64_t                       head;

    /* its connect, answered at once, held the session (the script's 2) */
    unsigned                       answered:1;

    ngx_str_node_t                 session;
    ngx_queue_t                    pending;
    ngx_uint_t                     npending;
    size_t                         pending_size;
    uint64_t                       confirming;
    ngx_queue_t                    confirm;
    ngx_msec_t                     kept_at;

    /* kept: more came for it than its queue holds, the last at "cursor" */
    ngx_uint_t                     missed;
    ngx_str_t                      browser;     /* after the structure */

    /*
     * Its connects acknowledge (the ack extension): "batch" is the
     * session's last batch; while no connect has acknowledged it
     * ("unacked"), the session is let go from "acked": the batch is
     * what Redis's logs hold after it ("gv" wrote it so, or the script
     * that answered its connect), or, where the session is held from,
     * the head of its queue.
     */
    unsigned                       ack:1;
    unsigned                       unacked:1;
    ngx_uint_t                     batch;
    uint64_t                       acked;

    /*
     * bayeux_max_inactivity: from "inactive_at" on, its session may have
     * been inactive too long, which its next connect's script checks; a
     * message given that counts as activity (client_server) moves it to
     * "period" from then
     */
    unsigned                       inactivity:1;
    ngx_msec_t                     inactive_at;
    ngx_msec_t                     period;
} ngx_bayeux_redis_park_t;


/* a message of the stream kept for a long-polling session held here */

typedef struct {
    ngx_queue_t                    queue;
    uint64_t                       seq;
    size_t                         len;
    u_char                         data[1];
} ngx_bayeux_redis_pending_t;


/* one script call; its arguments are copied after the structure */

typedef struct {
    ngx_bayeux_redis_req_t         req;         /* first: the adapter's */
    ngx_queue_t                    queue;       /* until the link is up */
    ngx_bayeux_redis_t            *redis;
    ngx_uint_t                     kind;
    ngx_bayeux_op_t               *op;
    ngx_bayeux_redis_park_t       *park;
    ngx_bayeux_redis_park_t      **parks;       /* a take's, in order */
    ngx_queue_t                    members;     /* a connect batch's */
    ngx_uint_t                     n;           /* parks or members */
    int                            argc;
    const char                   **argv;
    size_t                        *argvlen;
    u_char                        *last;
    ngx_msec_t                     sent;        /* when, for the latency */
    ngx_msec_t                     asked_at;    /* its wait began */
    uint64_t                       order;       /* it was made in */
    unsigned                       eval:1;
} ngx_bayeux_redis_cmd_t;


/*
 * A kind of command: the script's operation, the number of arguments it
 * takes before its list (channels, parked connects, messages...), the
 * function that reads its reply (none: the reply does not matter), for
 * an operation of the protocol the function that makes its result of the
 * script's code, and whether it may wait out a migration of its slot: a
 * command that names no worker channel or park, which means the same
 * whenever, and on whichever connection, it runs.
 */

typedef void (*ngx_bayeux_redis_done_pt)(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
typedef ngx_int_t (*ngx_bayeux_redis_result_pt)(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code);

typedef struct {
    ngx_str_t                      op;
    ngx_uint_t                     nargs;
    ngx_bayeux_redis_done_pt       done;
    ngx_bayeux_redis_result_pt     result;
    ngx_uint_t                     waits;
} ngx_bayeux_redis_kind_t;


struct ngx_bayeux_redis_s {
    ngx_bayeux_endpoint_t         *endpoint;
    ngx_log_t                     *log;

    ngx_addr_t                     peer;        /* resolved */
    ngx_str_t                      addr;        /* for the log */
#if (NGX_SSL)
    ngx_ssl_t                     *ssl;         /* rediss:// */
    ngx_str_t                      ssl_name;
#endif
    ngx_str_t                      user;
    ngx_str_t                      password;
    ngx_str_t                      db;          /* empty for 0 */
    ngx_bayeux_redis_sentinel_t   *sentinels;   /* redis+sentinel:// */
    ngx_bayeux_redis_cluster_t    *cluster;     /* redis+cluster:// */
    ngx_uint_t                     args;        /* of EVALSHA's header */
    ngx_str_t                      prefix;
    ngx_str_t                      ttl;
    ngx_str_t                      max_queue;
    ngx_uint_t                     max_queue_n;
    size_t                         max_queue_size;
    ngx_str_t                      max_subscriptions;
    ngx_str_t                      lazy;        /* bayeux_max_lazy_timeout */
    ngx_str_t                      max_inactivity;  /* "0": off */
    ngx_msec_t                     refresh;

    ngx_str_t                      channel;     /* this worker's */
    ngx_str_t                      stream;      /* every worker's */
    ngx_str_t                      ended_id;    /* a disconnect's */

    ngx_bayeux_redis_conn_t        cmd;
    ngx_bayeux_redis_conn_t        sub;

    ngx_bayeux_redis_req_t         auth_req;
    ngx_bayeux_redis_req_t         select_req;
    ngx_bayeux_redis_req_t         load_req;
    ngx_bayeux_redis_req_t         sub_auth_req;
    ngx_bayeux_redis_req_t         name_req;
    ngx_bayeux_redis_req_t         sub_name_req;
    ngx_bayeux_redis_req_t         subscribe_req;
    ngx_bayeux_redis_req_t         ping_req;
    ngx_bayeux_redis_req_t         role_req;

    ngx_uint_t                     state;
    ngx_queue_t                    waiting;

    /*
     * While the slot migrates, Redis answers ASK to every script, and
     * runs none: the commands that may wait do, in the order they were
     * made, and the first of them is sent again now and then (the
     * "probe") until it runs, or is answered MOVED and the link moves to
     * the slot's new primary.  After a MOVED the link closes once a PING
     * sent behind the commands in flight is answered, so that those are
     * answered MOVED too, and wait, rather than lost with the connection.
     * Once the old primary holds none of the slot's keys (CLUSTER
     * COUNTKEYSINSLOT, asked as often), the link moves to the node that
     * ASK names, and every command goes there after an ASKING.
     */
    ngx_queue_t                    asked;
    ngx_bayeux_redis_cmd_t        *probe;
    uint64_t                       order;
    ngx_event_t                    ask_retry;
    ngx_bayeux_redis_req_t         moved_req;
    ngx_bayeux_redis_req_t         count_req;
    ngx_bayeux_redis_req_t         owner_req;
    ngx_queue_t                    asking_free; /* ASKING's requests */
    ngx_str_t                      ask_node;    /* "host:port" of the ASK */
    u_char                        *importing_key;
    u_char                         ask_node_data[NGX_SOCKADDR_STRLEN];
    ngx_queue_t                    connects;    /* not sent yet */
    ngx_uint_t                     nconnects;
    ngx_rbtree_t                   parks;
    ngx_rbtree_node_t              sentinel;
    ngx_uint_t                     token;

    /* the held sessions, by subscription; the parks a message finds */
    ngx_bayeux_redis_held_index_t  held;
    ngx_array_t                    found;

    /* the long-polling ones, by id; those whose replies "gv" confirms */
    ngx_rbtree_t                   sessions;
    ngx_rbtree_node_t              sessions_sentinel;
    ngx_queue_t                    confirms;
    ngx_uint_t                     nconfirms;
    ngx_event_t                    confirm;
    ngx_queue_t                    catching;

    /*
     * the last message of the stream seen, the last written as given to
     * every session held here ("wc"), and the parks that hold it back
     */
    uint64_t                       stream_seq;
    uint64_t                       given_seq;
    ngx_uint_t                     unsettled;
    ngx_event_t                    given;

    /* the held sessions whose deliveries are pushed: "wc" is for them */
    ngx_uint_t                     pushed;

    /* the held park whose waiter's handler runs, given a message */
    ngx_bayeux_redis_park_t       *giving;
    ngx_bayeux_waiter_t           *giving_waiter;
    ngx_uint_t                     subscribed;  /* channels confirmed */
    ngx_bayeux_redis_req_t         sharded_req;

    ngx_event_t                    reconnect;
    ngx_event_t                    down;
    ngx_event_t                    tick;
    ngx_event_t                    lazy_sweep;
    ngx_event_t                    flush;
    ngx_msec_t                     backoff;
    time_t                         error_time;

    unsigned                       cmd_ready:1;
    unsigned                       sub_ready:1;
    unsigned                       outage:1;
    unsigned                       connected:1;  /* once, at least */
    unsigned                       exiting:1;
    unsigned                       ping:1;
    unsigned                       sweeping:1;
    unsigned                       lazy_sweeping:1;
    unsigned                       migrating:1;
    unsigned                       moved:1;
    unsigned                       counting:1;
    unsigned                       following:1; /* ASK, at the next link */
    unsigned                       asking:1;    /* this link follows ASK */
    unsigned                       owner_asked:1;
    unsigned                       asking_refused:1;

    /* the cluster's primary has SSUBSCRIBE (Redis 7.0 and later) */
    unsigned                       sharded:1;
    unsigned                       plain_said:1;
};


/* an endpoint's engine: its shards (bayeux_redis_shards) */

typedef struct {
    ngx_bayeux_redis_t            *shard;
    ngx_uint_t                     n;
} ngx_bayeux_redis_shards_t;


static ngx_int_t ngx_bayeux_redis_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);
static ngx_int_t ngx_bayeux_redis_init_shard(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep, ngx_bayeux_redis_url_t *ru,
    ngx_bayeux_redis_t *rd, ngx_uint_t shard);
static ngx_int_t ngx_bayeux_redis_init_process(ngx_cycle_t *cycle,
    ngx_bayeux_endpoint_t *ep);
static void ngx_bayeux_redis_exit_process(ngx_cycle_t *cycle,
    ngx_bayeux_endpoint_t *ep);
static ngx_int_t ngx_bayeux_redis_start_shard(ngx_cycle_t *cycle,
    ngx_bayeux_endpoint_t *ep, ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_stop_shard(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_handshake(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_connect_op(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_subscribe(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_unsubscribe(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_publish(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_publish_shard(ngx_bayeux_op_t *op,
    ngx_uint_t shard, void *data);
static void ngx_bayeux_redis_publish_on(ngx_bayeux_redis_t *rd,
    ngx_bayeux_op_t *op, ngx_uint_t own);
static ngx_bayeux_redis_t *ngx_bayeux_redis_session_shard(
    ngx_bayeux_op_t *op);
static ngx_uint_t ngx_bayeux_redis_shard_up(void *data, ngx_uint_t shard);
static void ngx_bayeux_redis_disconnect(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_touch(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_release(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_waiter_t *w);
static void ngx_bayeux_redis_cancel(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_waiter_t *w);

static void ngx_bayeux_redis_session_op(ngx_bayeux_op_t *op,
    ngx_uint_t kind);
static void ngx_bayeux_redis_op_done(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
static ngx_int_t ngx_bayeux_redis_handshake_result(
    ngx_bayeux_redis_cmd_t *cmd, redisReply *reply, ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_connect_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_subscribe_result(
    ngx_bayeux_redis_cmd_t *cmd, redisReply *reply, ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_publish_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_touch_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_count_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_disconnect_result(
    ngx_bayeux_redis_cmd_t *cmd, redisReply *reply, ngx_int_t code);
static void ngx_bayeux_redis_sweep(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_sweep_done(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
static ngx_msec_t ngx_bayeux_redis_lazy_period(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_lazy_handler(ngx_event_t *ev);
static void ngx_bayeux_redis_lazy_done(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
static void ngx_bayeux_redis_ended(ngx_bayeux_redis_t *rd, redisReply *id,
    redisReply *user, redisReply *last, ngx_uint_t reason);
static void ngx_bayeux_redis_deliver(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_count(ngx_bayeux_op_t *op);
static void ngx_bayeux_redis_target_op(ngx_bayeux_op_t *op, ngx_uint_t kind);
static void ngx_bayeux_redis_count_shard(ngx_bayeux_op_t *op,
    ngx_uint_t shard, void *data);
static void ngx_bayeux_redis_target_on(ngx_bayeux_redis_t *rd,
    ngx_bayeux_op_t *op, ngx_uint_t kind);
static ngx_int_t ngx_bayeux_redis_session_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_unsubscribe_result(
    ngx_bayeux_redis_cmd_t *cmd, redisReply *reply, ngx_int_t code);
static void ngx_bayeux_redis_unpark_done(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
static ngx_uint_t ngx_bayeux_redis_replies(ngx_bayeux_redis_t *rd,
    redisReply *reply, ngx_uint_t n);
static void ngx_bayeux_redis_copies(ngx_bayeux_redis_t *rd,
    redisReply *copies);
static ngx_uint_t ngx_bayeux_redis_valid_id(ngx_str_t *id);
static ngx_str_t *ngx_bayeux_redis_act(ngx_bayeux_op_t *op,
    ngx_uint_t receivers);
static void ngx_bayeux_redis_inactive(ngx_bayeux_redis_t *rd, ngx_str_t *id,
    redisReply *reply);

static ngx_int_t ngx_bayeux_redis_new_channel(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_link_start(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_link_failed(ngx_bayeux_redis_t *rd,
    u_char *why);
static void ngx_bayeux_redis_link_check(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_primary_found(void *data, ngx_addr_t *primary,
    u_char *error);
static void ngx_bayeux_redis_primary_switched(void *data);
static void ngx_bayeux_redis_down_handler(ngx_event_t *ev);
static void ngx_bayeux_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_bayeux_redis_tick_handler(ngx_event_t *ev);
static ngx_int_t ngx_bayeux_redis_setname(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, const char *role);
static void ngx_bayeux_redis_name_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_cmd_connected(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_sub_connected(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_sharded_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_subscribe_worker(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_closed(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_setup_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_sub_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_ping_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_streamed(ngx_bayeux_redis_t *rd, u_char *p,
    u_char *last);
static void ngx_bayeux_redis_hold(ngx_bayeux_redis_t *rd, u_char *p,
    u_char *last);
static void ngx_bayeux_redis_resubscribed(ngx_bayeux_redis_t *rd, u_char *p,
    u_char *last);
static void ngx_bayeux_redis_active(ngx_bayeux_redis_park_t *park,
    ngx_uint_t activity);
static void ngx_bayeux_redis_give(ngx_bayeux_redis_park_t *park,
    uint64_t seq, ngx_str_t *message);
static void ngx_bayeux_redis_given_handler(ngx_event_t *ev);
static void ngx_bayeux_redis_unsettle(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_settled(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_let_go(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_unhold(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_park_free(ngx_bayeux_redis_park_t *park);
static size_t ngx_bayeux_redis_cursor(ngx_bayeux_redis_park_t *park,
    u_char *buf);
static uint64_t ngx_bayeux_redis_given_up_to(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_given(ngx_bayeux_redis_t *rd, u_char *p,
    u_char *last);
static ngx_bayeux_redis_park_t *ngx_bayeux_redis_kept_find(
    ngx_bayeux_redis_t *rd, u_char *id);
static void ngx_bayeux_redis_index(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_unindex(ngx_bayeux_redis_park_t *park);
static ngx_int_t ngx_bayeux_redis_pend(ngx_bayeux_redis_park_t *park,
    uint64_t seq, ngx_str_t *message);
static void ngx_bayeux_redis_pending_free(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_confirm(ngx_bayeux_redis_park_t *park);
static u_char *ngx_bayeux_redis_batch_text(ngx_bayeux_redis_park_t *park,
    u_char *buf);
static ngx_uint_t ngx_bayeux_redis_confirmed(ngx_bayeux_redis_park_t *park,
    size_t *size);
static void ngx_bayeux_redis_confirm_handler(ngx_event_t *ev);
static void ngx_bayeux_redis_confirm_done(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
static void ngx_bayeux_redis_catch_up(ngx_bayeux_redis_park_t *park,
    uint64_t head);
static void ngx_bayeux_redis_caught_up(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_confirm_result(ngx_bayeux_redis_park_t *park,
    ngx_int_t code);
static ngx_int_t ngx_bayeux_redis_give_pending(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_reply_kept(ngx_bayeux_redis_park_t *park,
    ngx_bayeux_wake_e reason);
static void ngx_bayeux_redis_keep(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_keep_answered(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_let_held_go(ngx_bayeux_redis_t *rd,
    ngx_uint_t which);
static ngx_uint_t ngx_bayeux_redis_renewed(ngx_bayeux_redis_park_t *park);
static ngx_uint_t ngx_bayeux_redis_words(u_char **pos, u_char *last,
    u_char **word, size_t *len, ngx_uint_t n);
static ngx_int_t ngx_bayeux_redis_named(ngx_bayeux_redis_t *rd, u_char **pos,
    u_char *last, ngx_int_t *batch, ngx_bayeux_redis_park_t **park);
static void ngx_bayeux_redis_notified(ngx_bayeux_redis_t *rd, u_char *p,
    u_char *last);

static ngx_bayeux_redis_cmd_t *ngx_bayeux_redis_cmd_create(
    ngx_bayeux_redis_t *rd, ngx_uint_t kind, ngx_uint_t nlist, size_t size);
static void ngx_bayeux_redis_cmd_arg(ngx_bayeux_redis_cmd_t *cmd,
    u_char *data, size_t len);
static void ngx_bayeux_redis_submit(ngx_bayeux_redis_cmd_t *cmd);
static ngx_int_t ngx_bayeux_redis_cmd_send(ngx_bayeux_redis_cmd_t *cmd);
static ngx_uint_t ngx_bayeux_redis_wait_migration(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_uint_t probe);
static void ngx_bayeux_redis_ask_insert(ngx_bayeux_redis_t *rd,
    ngx_bayeux_redis_cmd_t *cmd);
static void ngx_bayeux_redis_moved(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_moved_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_ask_retry_handler(ngx_event_t *ev);
static void ngx_bayeux_redis_rename_waiting(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_send_probe(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_ask_noted(ngx_bayeux_redis_t *rd,
    redisReply *reply);
static void ngx_bayeux_redis_count_keys(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_count_keys_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static ngx_int_t ngx_bayeux_redis_asking(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_ask_owner(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_owner_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_asking_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_migrated(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_flush_handler(ngx_event_t *ev);
static void ngx_bayeux_redis_flush_connects(ngx_bayeux_redis_t *rd);
static void ngx_bayeux_redis_connects_done(ngx_bayeux_redis_cmd_t *batch,
    redisReply *reply);
static void ngx_bayeux_redis_cmd_free(ngx_bayeux_redis_cmd_t *cmd);
static void ngx_bayeux_redis_cmd_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_cmd_done(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
static ngx_int_t ngx_bayeux_redis_messages(redisReply *list,
    ngx_pool_t *pool, ngx_array_t **messages);
static void ngx_bayeux_redis_log_error(ngx_bayeux_redis_t *rd,
    redisReply *reply);

static ngx_bayeux_redis_park_t *ngx_bayeux_redis_park_find(
    ngx_bayeux_redis_t *rd, ngx_rbtree_key_t key);
static void ngx_bayeux_redis_take(ngx_bayeux_redis_park_t *park,
    char *mode);
static void ngx_bayeux_redis_take_batch(ngx_bayeux_redis_t *rd,
    ngx_bayeux_redis_park_t **parks, ngx_uint_t n, char *mode);
static void ngx_bayeux_redis_take_done(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply);
static void ngx_bayeux_redis_take_result(ngx_bayeux_redis_park_t *park,
    redisReply *r);
static void ngx_bayeux_redis_settle(ngx_bayeux_redis_park_t *park);
static uint64_t ngx_bayeux_redis_batch_from(redisReply *r,
    uint64_t cursor);
static ngx_uint_t ngx_bayeux_redis_kept(redisReply *r,
    ngx_bayeux_waiter_t *w);
static void ngx_bayeux_redis_answer(ngx_bayeux_redis_park_t *park,
    ngx_bayeux_wake_e reason, redisReply *list);
static void ngx_bayeux_redis_answered(ngx_bayeux_redis_park_t *park,
    ngx_bayeux_wake_e reason);
static void ngx_bayeux_redis_answer_given(ngx_bayeux_redis_park_t *park,
    ngx_uint_t batch, ngx_str_t *message);
static ngx_int_t ngx_bayeux_redis_copy_message(ngx_bayeux_waiter_t *w,
    u_char *data, size_t len);
static ngx_int_t ngx_bayeux_redis_one_message(ngx_bayeux_waiter_t *w,
    ngx_str_t *message);
static void ngx_bayeux_redis_unpark(ngx_bayeux_redis_park_t *park);
static void ngx_bayeux_redis_overflowed(ngx_bayeux_redis_t *rd,
    ngx_str_t *id, redisReply *reply);
static void ngx_bayeux_redis_put_back(ngx_bayeux_redis_t *rd, u_char *id,
    redisReply *list);
static void ngx_bayeux_redis_refresh(ngx_bayeux_redis_t *rd);
static ngx_bayeux_redis_park_t *ngx_bayeux_redis_first_parked(
    ngx_bayeux_redis_t *rd);


ngx_bayeux_engine_t  ngx_bayeux_engine_redis = {
    ngx_string("redis"),
    1,
    ngx_bayeux_redis_init_endpoint,
    ngx_bayeux_redis_init_process,
    ngx_bayeux_redis_exit_process,
    ngx_bayeux_redis_handshake,
    ngx_bayeux_redis_connect_op,
    ngx_bayeux_redis_subscribe,
    ngx_bayeux_redis_unsubscribe,
    ngx_bayeux_redis_publish,
    ngx_bayeux_redis_deliver,
    ngx_bayeux_redis_count,
    ngx_bayeux_redis_disconnect,
    ngx_bayeux_redis_touch,
    ngx_bayeux_redis_release,
    ngx_bayeux_redis_cancel
};


/*
 * Indexed by NGX_BAYEUX_REDIS_HANDSHAKE...; the replies are those of
 * ngx_bayeux_redis.lua.
 */

static ngx_bayeux_redis_kind_t  ngx_bayeux_redis_kinds[] = {

    /*
     * HANDSHAKE: id, browser, grants, user, its end watched (0 or 1),
     * inactivity period; {1, first session of the user} created, {0} the
     * id is taken
     */
    { ngx_string("hs"), 6, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_handshake_result, 1 },

    /*
     * CONNECT: id, browser, hold (0, 1, 2: may be held), token, the batch
     * it acknowledges ('' none), the last message given to the session
     * this worker held ('' none); never sent alone, its arguments go into
     * a CONNECT_BATCH,
     * which answers it with {-1} unknown, {0, messages}, {0, messages,
     * batch} if it acknowledges, {1} parked, or {-3, user, last},
     * {-4, user, last}: the script ended the session, its queue
     * overflowed or it was inactive
     */
    { ngx_string(""), 6, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_connect_result, 0 },

    /*
     * SUBSCRIBE: id, browser, most subscriptions, act; channels; -2 too
     * many.  "act", in these: what of the operation is activity
     * (ngx_bayeux_redis_act())
     */
    { ngx_string("su"), 4, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_subscribe_result, 1 },

    /*
     * UNSUBSCRIBE: id, browser, max queue, act; channels; -1 unknown,
     * {0, copies queued} done
     */
    { ngx_string("un"), 4, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_unsubscribe_result, 1 },

    /*
     * PUBLISH: id, browser, to publisher, max queue, message, lazy
     * timeout or "", act; the channel and its patterns; {-1} unknown or
     * {receivers, overflowed sessions, messages dropped, copies queued}
     */
    { ngx_string("pu"), 7, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_publish_result, 1 },

    /* DISCONNECT: id, browser; -1 unknown, {0, user, last session} done */
    { ngx_string("dc"), 2, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_disconnect_result, 1 },

    /* TOUCH: id, browser, act; {-1} unknown, {0, grants} known */
    { ngx_string("to"), 3, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_touch_result, 1 },

    /*
     * TAKE: worker channel, mode, max queue; id, token and the last
     * message given to its held session ('' none) of each; one reply
     * each, then the copies queued, if any
     */
    { ngx_string("tb"), 3, ngx_bayeux_redis_take_done, NULL, 0 },

    /*
     * UNPARK: id, worker channel, token, last message given, max queue,
     * "0" if the session's client is between connects (not renewed), the
     * messages kept for it when they came to more than its queue holds,
     * "1" if its last batch is not acknowledged; the copies queued
     */
    { ngx_string("up"), 8, ngx_bayeux_redis_unpark_done, NULL, 0 },

    /* PUT_BACK: id, max queue; messages */
    { ngx_string("pb"), 2, NULL, NULL, 1 },

    /* REFRESH: worker channel; id, token, last message given of each */
    { ngx_string("rf"), 1, NULL, NULL, 0 },

    /*
     * CONNECT_BATCH: worker channel, max queue; the CONNECTs' arguments;
     * one reply each, then the copies queued, if any.  One that waits for
     * a migration is given the channel of the link it is sent on
     * (ngx_bayeux_redis_rename_waiting()).
     */
    { ngx_string("cb"), 2, ngx_bayeux_redis_connects_done, NULL, 1 },

    /*
     * DELIVER: "c" and an id, or "u" and a user; max queue, message,
     * lazy timeout or "", act; as PUBLISH, {-1} for a session that is
     * gone
     */
    { ngx_string("dl"), 6, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_publish_result, 1 },

    /* COUNT: "u" and a user, or "c" and a channel; the number */
    { ngx_string("cn"), 2, ngx_bayeux_redis_op_done,
      ngx_bayeux_redis_count_result, 1 },

    /* SWEEP: the most to take; id, user, last session, of each expired */
    { ngx_string("sw"), 1, ngx_bayeux_redis_sweep_done, NULL, 0 },

    /* LAZY: the most to take; how many lazy deadlines passed */
    { ngx_string("lz"), 1, ngx_bayeux_redis_lazy_done, NULL, 0 },

    /* GIVEN: worker channel, the last message of the stream given */
    { ngx_string("wc"), 2, NULL, NULL, 0 },

    /*
     * CONFIRM: worker channel; id, token, the last message a reply gives
     * and, for a connect that acknowledges, its batch ("<batch>:<messages>
     * :<bytes>,"), of each long-polling session held here; one reply each
     */
    { ngx_string("gv"), 2, ngx_bayeux_redis_confirm_done, NULL, 0 }
};


/* "act" by its bits: 1 the operation's session, 2 its receivers */

static ngx_str_t  ngx_bayeux_redis_acts[] = {
    ngx_null_string,
    ngx_string("s"),
    ngx_string("d"),
    ngx_string("sd")
};


/* the SHA1 of ngx_bayeux_redis_script, for EVALSHA */

static u_char  ngx_bayeux_redis_sha[41];


/* configuration */

static ngx_int_t
ngx_bayeux_redis_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    u_char                      digest[20];
    char                       *err;
    ngx_uint_t                  i;
    ngx_sha1_t                  sha1;
    ngx_bayeux_loc_conf_t      *conf;
    ngx_bayeux_redis_url_t      ru;
    ngx_bayeux_redis_shards_t  *shards;
#if (NGX_SSL)
    ngx_ssl_t                  *ssl;
#endif

    conf = ep->conf;

    err = ngx_bayeux_redis_url_parse(cf->pool, &conf->redis_url, &ru);

    if (err) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_redis_url\" of location \"%V\" is "
                           "invalid: %s", &ep->name, err);
        return NGX_ERROR;
    }

    shards = ngx_palloc(cf->pool, sizeof(ngx_bayeux_redis_shards_t));
    if (shards == NULL) {
        return NGX_ERROR;
    }

    shards->n = conf->redis_shards;
    shards->shard = ngx_pcalloc(cf->pool,
                                shards->n * sizeof(ngx_bayeux_redis_t));
    if (shards->shard == NULL) {
        return NGX_ERROR;
    }

#if (NGX_SSL)
    ssl = NULL;

    if (ru.ssl) {
        ssl = ngx_bayeux_redis_ssl_create(cf, conf);
        if (ssl == NULL) {
            return NGX_ERROR;
        }
    }
#endif

    for (i = 0; i < shards->n; i++) {
        if (ngx_bayeux_redis_init_shard(cf, ep, &ru, &shards->shard[i], i)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

#if (NGX_SSL)
        shards->shard[i].ssl = ssl;
#endif
    }

    if (ngx_bayeux_redis_sha[0] == '\0') {
        ngx_sha1_init(&sha1);
        ngx_sha1_update(&sha1, ngx_bayeux_redis_script,
                        sizeof(ngx_bayeux_redis_script) - 1);
        ngx_sha1_final(digest, &sha1);

        ngx_hex_dump(ngx_bayeux_redis_sha, digest, sizeof(digest));
    }

    ep->data = shards;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_init_shard(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_redis_url_t *ru, ngx_bayeux_redis_t *rd, ngx_uint_t shard)
{
    u_char                  *p;
    ngx_int_t                rc;
    ngx_msec_t               ttl;
    ngx_str_t                prefix;
    ngx_bayeux_loc_conf_t   *conf;

    conf = ep->conf;

    rc = ngx_bayeux_redis_shard_prefix(cf->pool, &conf->redis_prefix, shard,
                                       conf->redis_shards, &prefix);

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no prefix found for shard %ui of location "
                           "\"%V\"", shard, &ep->name);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    rd->endpoint = ep;
    rd->log = cf->log;
    rd->peer = ru->peer;

#if (NGX_SSL)
    if (ru->ssl) {
        rd->ssl_name = conf->redis_ssl_name.len ? conf->redis_ssl_name
                                                : ru->host;
    }
#endif
    rd->addr = ru->addr;

    if (conf->redis_shards > 1 && ru->seeds == NULL) {
        /* the shards share the address: the log tells them apart */

        p = ngx_pnalloc(cf->pool, ru->addr.len + sizeof(" (shard )")
                                  + NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        rd->addr.data = p;
        rd->addr.len = ngx_sprintf(p, "%V (shard %ui)", &ru->addr, shard) - p;
    }

    rd->user = ru->user;
    rd->password = ru->password;
    rd->prefix = prefix;
    rd->args = NGX_BAYEUX_REDIS_ARGS;

    if (ru->seeds) {
        /* every key of the shard in one slot: "{<prefix>}" */

        p = ngx_pnalloc(cf->pool, 2 * (prefix.len + 2) + 3);
        if (p == NULL) {
            return NGX_ERROR;
        }

        /* declared on a node that imports the slot: "<prefix>!" */

        rd->importing_key = p;
        *p++ = '{';
        p = ngx_cpymem(p, prefix.data, prefix.len);
        *p++ = '}';
        *p++ = '!';

        rd->prefix.data = p;
        *p++ = '{';
        p = ngx_cpymem(p, prefix.data, prefix.len);
        *p++ = '}';
        rd->prefix.len = p - rd->prefix.data;

        /* the key declared without sharded pub/sub: "<prefix>~", "~!" */
        *p++ = '~';
        *p = '!';

        rd->cluster = ngx_bayeux_redis_cluster_create(cf->pool, ru,
                                                      &rd->prefix);
        if (rd->cluster == NULL) {
            return NGX_ERROR;
        }

        rd->cluster->ask.found = ngx_bayeux_redis_primary_found;
        rd->cluster->ask.data = rd;
        rd->addr = rd->cluster->ask.addr;
        rd->args = NGX_BAYEUX_REDIS_CLUSTER_ARGS;
    }

    if (ru->db) {
        rd->db.data = ngx_pnalloc(cf->pool, NGX_INT_T_LEN);
        if (rd->db.data == NULL) {
            return NGX_ERROR;
        }

        rd->db.len = ngx_sprintf(rd->db.data, "%i", ru->db) - rd->db.data;
    }

    if (ru->sentinels) {
        rd->sentinels = ngx_bayeux_redis_sentinel_create(cf->pool, ru);
        if (rd->sentinels == NULL) {
            return NGX_ERROR;
        }

        rd->sentinels->ask.found = ngx_bayeux_redis_primary_found;
        rd->sentinels->ask.data = rd;
        rd->sentinels->switched = ngx_bayeux_redis_primary_switched;
    }

    ttl = conf->interval + conf->max_interval;

    /* parked sessions are renewed three times per lifetime */

    rd->refresh = ttl / 3;

    if (rd->refresh < 10) {
        rd->refresh = 10;
    }

    p = ngx_pnalloc(cf->pool, 6 * NGX_INT_T_LEN + NGX_SIZE_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rd->ttl.data = p;
    p = ngx_sprintf(p, "%M", ttl);
    rd->ttl.len = p - rd->ttl.data;

    rd->max_queue.data = p;
    p = ngx_sprintf(p, "%ui %uz", conf->max_queue, conf->max_queue_size);
    rd->max_queue.len = p - rd->max_queue.data;
    rd->max_queue_n = conf->max_queue;
    rd->max_queue_size = conf->max_queue_size;

    rd->max_subscriptions.data = p;
    p = ngx_sprintf(p, "%ui", conf->max_subscriptions);
    rd->max_subscriptions.len = p - rd->max_subscriptions.data;

    rd->lazy.data = p;
    p = ngx_sprintf(p, "%M", conf->max_lazy_timeout);
    rd->lazy.len = p - rd->lazy.data;

    rd->max_inactivity.data = p;
    p = ngx_sprintf(p, "%M", conf->max_inactivity);
    rd->max_inactivity.len = p - rd->max_inactivity.data;

    return NGX_OK;
}


char *
ngx_bayeux_redis_url_post(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t *url = data;

    u_char                  *p;
    char                    *err;
    ngx_bayeux_redis_url_t   ru;

    err = ngx_bayeux_redis_url_parse(cf->pool, url, &ru);

    if (err == NULL) {
        return NGX_CONF_OK;
    }

    /* the URL itself is not repeated: it may hold a password */

    p = ngx_pnalloc(cf->pool, sizeof("is invalid: ") + ngx_strlen(err));
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(p, "is invalid: %s%Z", err);

    return (char *) p;
}


/* the life of a worker */

static ngx_int_t
ngx_bayeux_redis_init_process(ngx_cycle_t *cycle, ngx_bayeux_endpoint_t *ep)
{
    ngx_uint_t                  i;
    ngx_bayeux_redis_shards_t  *shards = ep->data;

    for (i = 0; i < shards->n; i++) {
        if (ngx_bayeux_redis_start_shard(cycle, ep, &shards->shard[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_start_shard(ngx_cycle_t *cycle, ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_redis_t *rd)
{
    u_char  *p;

    rd->log = cycle->log;

    p = ngx_pnalloc(cycle->pool, rd->prefix.len + sizeof("w:::")
                                 + cycle->hostname.len + NGX_INT_T_LEN
                                 + 2 * NGX_BAYEUX_REDIS_CHANNEL_RANDOM);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rd->channel.data = p;
    p = ngx_sprintf(p, "%Vw:%V:%P:", &rd->prefix, &cycle->hostname, ngx_pid);
    rd->channel.len = p - rd->channel.data
                      + 2 * NGX_BAYEUX_REDIS_CHANNEL_RANDOM;

    if (ngx_bayeux_redis_new_channel(rd) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cycle->pool, rd->prefix.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rd->stream.data = p;
    rd->stream.len = ngx_sprintf(p, "%VN", &rd->prefix) - p;

    if (ngx_array_init(&rd->found, cycle->pool, 16, sizeof(void *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_queue_init(&rd->waiting);
    ngx_queue_init(&rd->asked);
    ngx_queue_init(&rd->asking_free);
    ngx_queue_init(&rd->connects);
    ngx_rbtree_init(&rd->parks, &rd->sentinel, ngx_rbtree_insert_value);
    ngx_rbtree_init(&rd->sessions, &rd->sessions_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&rd->confirms);
    ngx_queue_init(&rd->catching);
    ngx_bayeux_redis_held_init(&rd->held, cycle->log);

    rd->cmd.log = cycle->log;
    rd->cmd.connect_timeout = ep->conf->redis_connect_timeout;
    rd->cmd.command_timeout = ep->conf->redis_command_timeout;
    rd->cmd.connected = ngx_bayeux_redis_cmd_connected;
    rd->cmd.closed = ngx_bayeux_redis_closed;
    rd->cmd.data = rd;

#if (NGX_SSL)
    rd->cmd.ssl = rd->ssl;
    rd->cmd.ssl_name = rd->ssl_name;
    rd->cmd.ssl_verify = ep->conf->redis_ssl_verify;
    rd->cmd.ssl_server_name = ep->conf->redis_ssl_server_name;
#endif

    rd->sub = rd->cmd;
    rd->sub.connected = ngx_bayeux_redis_sub_connected;

    rd->auth_req.handler = ngx_bayeux_redis_setup_reply;
    rd->select_req.handler = ngx_bayeux_redis_setup_reply;
    rd->load_req.handler = ngx_bayeux_redis_setup_reply;
    rd->sub_auth_req.handler = ngx_bayeux_redis_setup_reply;
    rd->name_req.handler = ngx_bayeux_redis_name_reply;
    rd->sub_name_req.handler = ngx_bayeux_redis_name_reply;
    rd->subscribe_req.handler = ngx_bayeux_redis_sub_reply;
    rd->subscribe_req.subscription = 1;
    rd->sharded_req.handler = ngx_bayeux_redis_sharded_reply;
    rd->ping_req.handler = ngx_bayeux_redis_ping_reply;
    rd->moved_req.handler = ngx_bayeux_redis_moved_reply;
    rd->count_req.handler = ngx_bayeux_redis_count_keys_reply;
    rd->owner_req.handler = ngx_bayeux_redis_owner_reply;

    rd->reconnect.handler = ngx_bayeux_redis_reconnect_handler;
    rd->reconnect.data = rd;
    rd->reconnect.log = cycle->log;
    rd->reconnect.cancelable = 1;

    rd->down.handler = ngx_bayeux_redis_down_handler;
    rd->down.data = rd;
    rd->down.log = cycle->log;

    rd->tick.handler = ngx_bayeux_redis_tick_handler;
    rd->tick.data = rd;
    rd->tick.log = cycle->log;
    rd->tick.cancelable = 1;

    rd->given.handler = ngx_bayeux_redis_given_handler;
    rd->given.data = rd;
    rd->given.log = cycle->log;

    rd->confirm.handler = ngx_bayeux_redis_confirm_handler;
    rd->confirm.data = rd;
    rd->confirm.log = cycle->log;

    rd->flush.handler = ngx_bayeux_redis_flush_handler;
    rd->flush.data = rd;
    rd->flush.log = cycle->log;

    rd->lazy_sweep.handler = ngx_bayeux_redis_lazy_handler;
    rd->lazy_sweep.data = rd;
    rd->lazy_sweep.log = cycle->log;
    rd->lazy_sweep.cancelable = 1;

    rd->ask_retry.handler = ngx_bayeux_redis_ask_retry_handler;
    rd->ask_retry.data = rd;
    rd->ask_retry.log = cycle->log;
    rd->ask_retry.cancelable = 1;

    rd->backoff = NGX_BAYEUX_REDIS_BACKOFF_MIN;

    if (rd->sentinels) {
        ngx_bayeux_redis_sentinel_init(rd->sentinels, cycle->log, &rd->cmd);
    }

    if (rd->cluster) {
        ngx_bayeux_redis_cluster_init(rd->cluster, cycle->log, &rd->cmd);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "bayeux redis: worker channel \"%V\" for \"%V\"",
                   &rd->channel, &ep->name);

    ngx_bayeux_redis_link_start(rd);

    ngx_add_timer(&rd->tick, rd->refresh);

    if (ep->conf->lazy_channels) {
        ngx_add_timer(&rd->lazy_sweep, ngx_bayeux_redis_lazy_period(rd));
    }

    return NGX_OK;
}


/*
 * A channel no other worker, here or elsewhere, ever had; new at each
 * connection to Redis, so that what Redis keeps under the old one (the
 * sessions whose parked connects the lost connection answered, and how
 * far the stream was given to them, "wc") stays as it was.
 */

static ngx_int_t
ngx_bayeux_redis_new_channel(ngx_bayeux_redis_t *rd)
{
    u_char   random[NGX_BAYEUX_REDIS_CHANNEL_RANDOM];
    ssize_t  n;

    n = getrandom(random, sizeof(random), 0);

    if (n != (ssize_t) sizeof(random)) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, ngx_errno,
                      "bayeux: getrandom() failed");
        return NGX_ERROR;
    }

    ngx_hex_dump(rd->channel.data + rd->channel.len - 2 * sizeof(random),
                 random, sizeof(random));

    return NGX_OK;
}


static void
ngx_bayeux_redis_exit_process(ngx_cycle_t *cycle, ngx_bayeux_endpoint_t *ep)
{
    ngx_uint_t                  i;
    ngx_bayeux_redis_shards_t  *shards = ep->data;

    for (i = 0; i < shards->n; i++) {
        ngx_bayeux_redis_stop_shard(ep, &shards->shard[i]);
    }
}


static void
ngx_bayeux_redis_stop_shard(ngx_bayeux_endpoint_t *ep, ngx_bayeux_redis_t *rd)
{
    ngx_queue_t              *q;
    ngx_rbtree_node_t        *node;
    ngx_bayeux_redis_cmd_t   *cmd;
    ngx_bayeux_redis_park_t  *park;

    /* the process ends: nothing is answered any more, only freed */

    if (rd->state == NGX_BAYEUX_REDIS_UP && !rd->exiting) {
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_REDIS_LINKS_UP, -1);
    }

    rd->exiting = 1;

    if (rd->tick.timer_set) {
        ngx_del_timer(&rd->tick);
    }

    if (rd->lazy_sweep.timer_set) {
        ngx_del_timer(&rd->lazy_sweep);
    }

    if (rd->reconnect.timer_set) {
        ngx_del_timer(&rd->reconnect);
    }

    if (rd->ask_retry.timer_set) {
        ngx_del_timer(&rd->ask_retry);
    }

    if (rd->down.posted) {
        ngx_delete_posted_event(&rd->down);
    }

    if (rd->flush.posted) {
        ngx_delete_posted_event(&rd->flush);
    }

    if (rd->given.posted) {
        ngx_delete_posted_event(&rd->given);
    }

    if (rd->confirm.posted) {
        ngx_delete_posted_event(&rd->confirm);
    }

    ngx_bayeux_redis_close(&rd->cmd, "worker process is exiting");
    ngx_bayeux_redis_close(&rd->sub, "worker process is exiting");

    /* (those in flight were answered by the closes) */

    while (!ngx_queue_empty(&rd->asking_free)) {
        q = ngx_queue_head(&rd->asking_free);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_bayeux_redis_req_t, queue));
    }

    if (rd->sentinels) {
        ngx_bayeux_redis_sentinel_close(rd->sentinels);
    }

    if (rd->cluster) {
        ngx_bayeux_redis_ask_close(&rd->cluster->ask);
    }

    while (!ngx_queue_empty(&rd->waiting)) {
        q = ngx_queue_head(&rd->waiting);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
        ngx_bayeux_redis_cmd_free(cmd);
    }

    while (!ngx_queue_empty(&rd->asked)) {
        q = ngx_queue_head(&rd->asked);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
        ngx_bayeux_redis_cmd_free(cmd);
    }

    while (!ngx_queue_empty(&rd->connects)) {
        q = ngx_queue_head(&rd->connects);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
        ngx_free(cmd);
    }

    rd->nconnects = 0;

    while (rd->parks.root != rd->parks.sentinel) {
        node = ngx_rbtree_min(rd->parks.root, rd->parks.sentinel);
        ngx_rbtree_delete(&rd->parks, node);

        park = (ngx_bayeux_redis_park_t *) node;

        if (park->waiter) {
            park->waiter->engine_data = NULL;
        }

        ngx_bayeux_redis_park_free(park);
    }
}


/* the link: two connections, one for commands and one for notifications */

static void
ngx_bayeux_redis_link_start(ngx_bayeux_redis_t *rd)
{
    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                   "bayeux redis: connecting to %V", &rd->addr);

    rd->state = NGX_BAYEUX_REDIS_CONNECTING;
    rd->cmd_ready = 0;
    rd->sub_ready = 0;

    if (rd->sentinels) {
        /* the primary is wherever the sentinels say it is now */
        ngx_bayeux_redis_sentinel_ask(rd->sentinels);
        return;
    }

    rd->asking = rd->following;
    rd->following = 0;
    rd->ask_node.len = 0;

    if (rd->asking) {
        /* the node the slot's keys moved to, named by ASK */
        ngx_bayeux_redis_primary_found(rd, &rd->cluster->ask.primary, NULL);
        return;
    }

    if (rd->cluster) {
        /* the primary that serves the slot now */
        ngx_bayeux_redis_ask_start(&rd->cluster->ask);
        return;
    }

    if (ngx_bayeux_redis_connect(&rd->cmd, &rd->peer) != NGX_OK) {
        ngx_bayeux_redis_link_failed(rd, rd->cmd.error);
        return;
    }

    if (ngx_bayeux_redis_connect(&rd->sub, &rd->peer) != NGX_OK) {
        ngx_bayeux_redis_link_failed(rd, rd->sub.error);
        return;
    }
}


static void
ngx_bayeux_redis_primary_found(void *data, ngx_addr_t *primary,
    u_char *error)
{
    ngx_bayeux_redis_t  *rd = data;

    if (rd->exiting || rd->state != NGX_BAYEUX_REDIS_CONNECTING) {
        return;
    }

    if (primary == NULL) {
        ngx_bayeux_redis_link_failed(rd, error);
        return;
    }

    rd->peer = *primary;
    rd->addr = rd->sentinels ? rd->sentinels->ask.addr
                             : rd->cluster->ask.addr;

    if (ngx_bayeux_redis_connect(&rd->cmd, &rd->peer) != NGX_OK) {
        ngx_bayeux_redis_link_failed(rd, rd->cmd.error);
        return;
    }

    if (ngx_bayeux_redis_connect(&rd->sub, &rd->peer) != NGX_OK) {
        ngx_bayeux_redis_link_failed(rd, rd->sub.error);
    }
}


/* a failover: the link is closed, and the sentinels asked again */

static void
ngx_bayeux_redis_primary_switched(void *data)
{
    ngx_bayeux_redis_t  *rd = data;

    ngx_bayeux_redis_close(&rd->cmd, "the sentinels switched the master");
    ngx_bayeux_redis_close(&rd->sub, "the sentinels switched the master");
}


/*
 * Called wherever a failure is noticed, possibly deep inside hiredis: the
 * state changes at once, so that new operations fail fast, and the rest
 * is done by a posted event.
 */

static void
ngx_bayeux_redis_link_failed(ngx_bayeux_redis_t *rd, u_char *why)
{
    if (rd->state == NGX_BAYEUX_REDIS_DOWN || rd->exiting) {
        return;
    }

    if (rd->state == NGX_BAYEUX_REDIS_UP) {
        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_LINKS_UP, -1);
    }

    rd->state = NGX_BAYEUX_REDIS_DOWN;

    /*
     * Once per outage, however many attempts to reconnect fail; an
     * exiting worker whose connections nginx closes has no outage.
     */

    if (!rd->outage && !ngx_exiting) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "bayeux: redis %V of location \"%V\" is unavailable "
                      "(%s): requests get \"503::engine_unavailable\" "
                      "until it is back",
                      &rd->addr, &rd->endpoint->name, why);
        rd->outage = 1;

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                       "bayeux redis: %V still unavailable (%s)",
                       &rd->addr, why);
    }

    ngx_post_event(&rd->down, &ngx_posted_next_events);
}


static void
ngx_bayeux_redis_down_handler(ngx_event_t *ev)
{
    ngx_queue_t              *q;
    ngx_bayeux_redis_t       *rd = ev->data;
    ngx_bayeux_redis_cmd_t   *cmd;
    ngx_bayeux_redis_park_t  *park;

    /* commands in flight are answered with NULL: their operations fail */

    ngx_bayeux_redis_close(&rd->cmd, NULL);
    ngx_bayeux_redis_close(&rd->sub, NULL);

    while (!ngx_queue_empty(&rd->waiting)) {
        q = ngx_queue_head(&rd->waiting);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
        ngx_bayeux_redis_cmd_done(cmd, NULL);
    }

    /* nothing was written for those waiting for the stream */

    while (!ngx_queue_empty(&rd->catching)) {
        q = ngx_queue_head(&rd->catching);
        ngx_queue_remove(q);

        park = ngx_queue_data(q, ngx_bayeux_redis_park_t, confirm);
        park->catching = 0;

        ngx_bayeux_redis_confirm_result(park, 0);
    }

    /* a notification may have been lost: parked connects are answered */

    for ( ;; ) {
        park = ngx_bayeux_redis_first_parked(rd);

        if (park == NULL) {
            break;
        }

        ngx_bayeux_redis_answer(park, NGX_BAYEUX_WAKE_ERROR, NULL);
    }

    ngx_bayeux_redis_let_held_go(rd, NGX_BAYEUX_REDIS_KEPT_FORGET);

    /* (the old name stays if getrandom() fails: it is said in the log) */
    (void) ngx_bayeux_redis_new_channel(rd);
    ngx_bayeux_redis_rename_waiting(rd);

    ngx_add_timer(&rd->reconnect, rd->backoff);

    rd->backoff *= 2;

    if (rd->backoff > NGX_BAYEUX_REDIS_BACKOFF_MAX) {
        rd->backoff = NGX_BAYEUX_REDIS_BACKOFF_MAX;
    }
}


/*
 * The connects that wait for a migration (the link moves to the slot's
 * new primary) would hold their sessions for the channel of the link
 * that is gone, which no worker listens to: they name the new one, of
 * the same length, when they are sent.
 */

static void
ngx_bayeux_redis_rename_waiting(ngx_bayeux_redis_t *rd)
{
    ngx_queue_t             *q;
    ngx_bayeux_redis_cmd_t  *cmd;

    for (q = ngx_queue_head(&rd->asked);
         q != ngx_queue_sentinel(&rd->asked);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);

        if (cmd->kind == NGX_BAYEUX_REDIS_CONNECT_BATCH) {
            ngx_memcpy((u_char *) cmd->argv[rd->args], rd->channel.data,
                       rd->channel.len);
        }
    }
}


static void
ngx_bayeux_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_bayeux_redis_t  *rd = ev->data;

    if (rd->exiting || rd->state != NGX_BAYEUX_REDIS_DOWN) {
        return;
    }

    ngx_bayeux_redis_link_start(rd);
}


/*
 * CLIENT SETNAME bayeux:<pid>:<role>, after AUTH: an operator's CLIENT
 * LIST then tells which worker holds which connection
 */

static ngx_int_t
ngx_bayeux_redis_setname(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, const char *role)
{
    u_char       name[sizeof("bayeux::") + NGX_INT64_LEN + 8], *p;
    const char  *argv[3];
    size_t       argvlen[3];

    p = ngx_snprintf(name, sizeof(name), "bayeux:%P:%s", ngx_pid, role);

    argv[0] = "CLIENT";
    argvlen[0] = 6;
    argv[1] = "SETNAME";
    argvlen[1] = 7;
    argv[2] = (const char *) name;
    argvlen[2] = p - name;

    return ngx_bayeux_redis_send(rc, req, 3, argv, argvlen);
}


/*
 * a name is for the operator: a Redis that refuses it (an ACL user
 * without CLIENT) is served all the same
 */

static void
ngx_bayeux_redis_name_reply(ngx_bayeux_redis_conn_t *rc, redisReply *reply,
    ngx_bayeux_redis_req_t *req)
{
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rc->log, 0,
                       "bayeux redis: CLIENT SETNAME refused: %*s",
                       reply->len, reply->str);
    }
}


static void
ngx_bayeux_redis_cmd_connected(ngx_bayeux_redis_conn_t *rc)
{
    const char          *argv[3];
    size_t               argvlen[3];
    ngx_bayeux_redis_t  *rd = rc->data;

    /*
     * pipelined: AUTH, CLIENT SETNAME, SELECT, SCRIPT LOAD; the last
     * reply says ready
     */

    if (ngx_bayeux_redis_auth(rc, &rd->auth_req, &rd->user, &rd->password)
        != NGX_OK
        || ngx_bayeux_redis_setname(rc, &rd->name_req, "cmd") != NGX_OK)
    {
        goto failed;
    }

    if (rd->sentinels
        && ngx_bayeux_redis_sentinel_role(rc, &rd->role_req) != NGX_OK)
    {
        goto failed;
    }

    if (rd->db.len) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (const char *) rd->db.data;
        argvlen[1] = rd->db.len;

        if (ngx_bayeux_redis_send(rc, &rd->select_req, 2, argv, argvlen)
            != NGX_OK)
        {
            goto failed;
        }
    }

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = ngx_bayeux_redis_script;
    argvlen[2] = sizeof(ngx_bayeux_redis_script) - 1;

    if (ngx_bayeux_redis_send(rc, &rd->load_req, 3, argv, argvlen)
        == NGX_OK)
    {
        return;
    }

failed:

    ngx_bayeux_redis_close(rc, "cannot send a command");
}


static void
ngx_bayeux_redis_sub_connected(ngx_bayeux_redis_conn_t *rc)
{
    const char          *argv[3];
    size_t               argvlen[3];
    ngx_bayeux_redis_t  *rd = rc->data;

    rd->subscribed = 0;

    if (ngx_bayeux_redis_auth(rc, &rd->sub_auth_req, &rd->user,
                              &rd->password)
        != NGX_OK
        || ngx_bayeux_redis_setname(rc, &rd->sub_name_req, "sub") != NGX_OK)
    {
        goto failed;
    }

    if (rd->cluster == NULL) {
        ngx_bayeux_redis_subscribe_worker(rc);
        return;
    }

    /* a node before Redis 7.0 has no sharded pub/sub: it is asked */

    argv[0] = "COMMAND";
    argvlen[0] = 7;
    argv[1] = "INFO";
    argvlen[1] = 4;
    argv[2] = "SSUBSCRIBE";
    argvlen[2] = 10;

    if (ngx_bayeux_redis_send(rc, &rd->sharded_req, 3, argv, argvlen)
        == NGX_OK)
    {
        return;
    }

failed:

    ngx_bayeux_redis_close(rc, "cannot send a command");
}


/*
 * COMMAND INFO SSUBSCRIBE names no command (nil) where the node lacks
 * it; a node that refuses COMMAND (an ACL) is taken to have it, and says
 * otherwise when it is subscribed.
 */

static void
ngx_bayeux_redis_sharded_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    ngx_bayeux_redis_t  *rd = rc->data;

    if (reply == NULL || rd->exiting) {
        return;
    }

    rd->sharded = !(reply->type == REDIS_REPLY_ARRAY
                    && reply->elements == 1
                    && reply->element[0]->type == REDIS_REPLY_NIL);

    if (!rd->sharded && !rd->plain_said) {
        rd->plain_said = 1;

        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "bayeux: redis %V of location \"%V\" has no sharded "
                      "pub/sub (SSUBSCRIBE, Redis 7.0): notifications go by "
                      "PUBLISH, to every node of the cluster",
                      &rd->addr, &rd->endpoint->name);
    }

    ngx_bayeux_redis_subscribe_worker(rc);
}


static void
ngx_bayeux_redis_subscribe_worker(ngx_bayeux_redis_conn_t *rc)
{
    const char          *argv[3];
    size_t               argvlen[3];
    ngx_bayeux_redis_t  *rd = rc->data;

    /* a cluster's sharded pub/sub stays within the slot's shard */

    if (rd->cluster && rd->sharded) {
        argv[0] = "SSUBSCRIBE";
        argvlen[0] = 10;

        if (rd->asking && ngx_bayeux_redis_asking(rc) != NGX_OK) {
            ngx_bayeux_redis_close(rc, "cannot send a command");
            return;
        }

    } else {
        argv[0] = "SUBSCRIBE";
        argvlen[0] = 9;
    }

    /*
     * One connection for both: what a script publishes to this worker's
     * channel and to the stream comes in the order it was published.
     */

    argv[1] = (const char *) rd->channel.data;
    argvlen[1] = rd->channel.len;
    argv[2] = (const char *) rd->stream.data;
    argvlen[2] = rd->stream.len;

    if (ngx_bayeux_redis_send(rc, &rd->subscribe_req, 3, argv, argvlen)
        != NGX_OK)
    {
        ngx_bayeux_redis_close(rc, "cannot send a command");
    }
}


static void
ngx_bayeux_redis_closed(ngx_bayeux_redis_conn_t *rc)
{
    ngx_bayeux_redis_link_failed(rc->data, rc->error);
}


static void
ngx_bayeux_redis_setup_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    ngx_bayeux_redis_t  *rd = rc->data;

    if (reply == NULL || rd->exiting) {
        /* the connection is gone; "closed" follows */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_bayeux_redis_close(rc, reply->str);
        return;
    }

    if (req != &rd->load_req) {
        return;
    }

    if (reply->type != REDIS_REPLY_STRING || reply->len != 40
        || ngx_strncmp(reply->str, ngx_bayeux_redis_sha, 40) != 0)
    {
        ngx_bayeux_redis_close(rc, "SCRIPT LOAD returned an unexpected "
                                   "digest");
        return;
    }

    rd->cmd_ready = 1;

    ngx_bayeux_redis_link_check(rd);
}


static void
ngx_bayeux_redis_sub_reply(ngx_bayeux_redis_conn_t *rc, redisReply *reply,
    ngx_bayeux_redis_req_t *req)
{
    size_t               len;
    u_char              *p;
    redisReply          *type, *channel, *payload;
    ngx_bayeux_redis_t  *rd = rc->data;

    if (reply == NULL || rd->exiting) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* refused: no subscription, no notification */
        ngx_bayeux_redis_close(rc, reply->str);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        return;
    }

    type = reply->element[0];
    channel = reply->element[1];
    payload = reply->element[2];

    if (type->type != REDIS_REPLY_STRING) {
        return;
    }

    /* "subscribe", "message"; a cluster's "ssubscribe", "smessage" */

    p = (u_char *) type->str;
    len = type->len;

    if (rd->cluster && rd->sharded && len && *p == 's') {
        p++;
        len--;
    }

    if (len == 9 && ngx_strncmp(p, "subscribe", 9) == 0) {
        if (++rd->subscribed == 2) {
            rd->sub_ready = 1;
            ngx_bayeux_redis_link_check(rd);
        }

        return;
    }

    if (len == 11 && ngx_strncmp(p, "unsubscribe", 11) == 0) {
        /* the slot moved to another shard: its primary is asked again */
        ngx_bayeux_redis_close(rc, "the slot moved to another node");
        return;
    }

    if (len == 7 && ngx_strncmp(p, "message", 7) == 0
        && payload->type == REDIS_REPLY_STRING)
    {
        if (channel->type == REDIS_REPLY_STRING
            && channel->len == rd->stream.len
            && ngx_strncmp(channel->str, rd->stream.data, rd->stream.len)
               == 0)
        {
            ngx_bayeux_redis_streamed(rd, (u_char *) payload->str,
                                      (u_char *) payload->str
                                      + payload->len);
            return;
        }

        ngx_bayeux_redis_notified(rd, (u_char *) payload->str,
                                  (u_char *) payload->str + payload->len);
    }
}


static void
ngx_bayeux_redis_ping_reply(ngx_bayeux_redis_conn_t *rc, redisReply *reply,
    ngx_bayeux_redis_req_t *req)
{
    ngx_bayeux_redis_t  *rd = rc->data;

    rd->ping = 0;
}


static void
ngx_bayeux_redis_link_check(ngx_bayeux_redis_t *rd)
{
    ngx_queue_t             *q;
    ngx_bayeux_redis_cmd_t  *cmd;

    if (rd->state != NGX_BAYEUX_REDIS_CONNECTING
        || !rd->cmd_ready || !rd->sub_ready)
    {
        return;
    }

    rd->state = NGX_BAYEUX_REDIS_UP;
    rd->backoff = NGX_BAYEUX_REDIS_BACKOFF_MIN;
    ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_LINKS_UP, 1);

    /* good news is no error: log-based alerting must not fire on it */

    if (rd->outage) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "bayeux: redis %V of location \"%V\" is available "
                      "again", &rd->addr, &rd->endpoint->name);
        rd->outage = 0;
        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_RECONNECTS, 1);

    } else if (!rd->connected) {
        ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                      "bayeux: redis %V of location \"%V\" connected",
                      &rd->addr, &rd->endpoint->name);

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                       "bayeux redis: %V is up", &rd->addr);
    }

    rd->connected = 1;

    while (!ngx_queue_empty(&rd->waiting)
           && rd->state == NGX_BAYEUX_REDIS_UP)
    {
        q = ngx_queue_head(&rd->waiting);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
        ngx_bayeux_redis_submit(cmd);
    }

    /* the slot's new primary: what waited for the migration goes on */

    if (!ngx_queue_empty(&rd->asked) && rd->probe == NULL
        && rd->state == NGX_BAYEUX_REDIS_UP)
    {
        ngx_bayeux_redis_send_probe(rd);
    }
}


static void
ngx_bayeux_redis_tick_handler(ngx_event_t *ev)
{
    const char               *argv[1];
    size_t                    argvlen[1];
    ngx_bayeux_redis_t       *rd = ev->data;
    ngx_bayeux_redis_park_t  *park;

    if (rd->state == NGX_BAYEUX_REDIS_UP
        && rd->parks.root == rd->parks.sentinel && !rd->ping)
    {
        /*
         * An idle connection is checked too: a Redis that went silent is
         * noticed before a request needs it, and one with "timeout" set
         * does not close it.
         */

        argv[0] = "PING";
        argvlen[0] = 4;

        if (ngx_bayeux_redis_send(&rd->cmd, &rd->ping_req, 1, argv, argvlen)
            == NGX_OK)
        {
            rd->ping = 1;
        }
    }

    if (rd->state == NGX_BAYEUX_REDIS_UP) {

        if (ngx_exiting) {
            /* the worker is shutting down: its clients move on */

            for ( ;; ) {
                park = ngx_bayeux_redis_first_parked(rd);

                if (park == NULL) {
                    break;
                }

                ngx_bayeux_redis_take(park, "r");
            }
        }

        ngx_bayeux_redis_refresh(rd);
        ngx_bayeux_redis_let_held_go(rd, ngx_exiting
                                         ? NGX_BAYEUX_REDIS_KEPT_ALL
                                         : NGX_BAYEUX_REDIS_KEPT_IDLE);

        if (rd->endpoint->session_ended && !rd->sweeping) {
            ngx_bayeux_redis_sweep(rd);
        }
    }

    ngx_add_timer(ev, rd->refresh);
}


/*
 * notifications: "<id> <token> <id> <token> ...", or what a publish
 * gave ("!...", ngx_bayeux_redis_given())
 */

static void
ngx_bayeux_redis_notified(ngx_bayeux_redis_t *rd, u_char *p, u_char *last)
{
    ngx_uint_t                n;
    ngx_bayeux_redis_park_t  *park, *batch[NGX_BAYEUX_REDIS_TAKE_MAX];

    if (p < last && *p == '!') {
        ngx_bayeux_redis_given(rd, p + 1, last);
        return;
    }

    if (last - p > 2 && p[0] == 'h' && p[1] == ' ') {
        ngx_bayeux_redis_hold(rd, p + 2, last);
        return;
    }

    if (last - p > 2 && p[0] == 's' && p[1] == ' ') {
        ngx_bayeux_redis_resubscribed(rd, p + 2, last);
        return;
    }

    /* the sessions parked here are taken by one script call */

    n = 0;

    while (ngx_bayeux_redis_named(rd, &p, last, NULL, &park) == NGX_OK) {

        if (park == NULL) {
            /* answered meanwhile */
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "bayeux redis: session %*s notified",
                       (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);

        if (park->state == NGX_BAYEUX_PARK_PARKED) {

            /* taken once, even if named twice */
            park->state = NGX_BAYEUX_PARK_TAKING;
            batch[n++] = park;

            if (n == NGX_BAYEUX_REDIS_TAKE_MAX) {
                ngx_bayeux_redis_take_batch(rd, batch, n, "w");
                n = 0;
            }

        } else if (park->state == NGX_BAYEUX_PARK_KEPT) {
            /*
             * No connect to answer: its next one finds what came.  Redis
             * keeps the session held from "h", which is exact between
             * long-polling connects, so the next connect, here or
             * elsewhere, lets it go from there (another connect of the
             * session may have done so already): no script call.
             */
            ngx_rbtree_delete(&rd->parks, &park->node);
            ngx_bayeux_redis_park_free(park);

        } else {
            /* looked at again when the command in flight is answered */
            park->notified = 1;
        }
    }

    if (n) {
        ngx_bayeux_redis_take_batch(rd, batch, n, "w");
    }
}


/*
 * "<id> <token> <batch> ...\n<message>": a publish gave the message to
 * connects parked here that acknowledge what they receive (the ack
 * extension), and keeps it until they do.
 */

static void
ngx_bayeux_redis_given(ngx_bayeux_redis_t *rd, u_char *p, u_char *last)
{
    u_char                   *nl;
    ngx_int_t                 n;
    ngx_str_t                 message;
    ngx_bayeux_redis_park_t  *park;

    nl = ngx_strlchr(p, last, '\n');
    if (nl == NULL) {
        return;
    }

    message.data = nl + 1;
    message.len = last - message.data;

    while (ngx_bayeux_redis_named(rd, &p, nl, &n, &park) == NGX_OK) {

        if (park == NULL) {
            continue;
        }

        if (park->state != NGX_BAYEUX_PARK_PARKED) {
            /*
             * a command for it is in flight: once answered, a take finds
             * it no longer parked and answers it, and the client's next
             * connect is given the message again
             */
            park->notified = 1;
            continue;
        }

        ngx_bayeux_redis_answer_given(park, n, &message);
    }
}


/*
 * Up to "n" words of a notification separated by spaces, from "*pos" to
 * "last", which "*pos" is moved past; returns how many there were.
 */

static ngx_uint_t
ngx_bayeux_redis_words(u_char **pos, u_char *last, u_char **word,
    size_t *len, ngx_uint_t n)
{
    u_char      *p, *end;
    ngx_uint_t   i;

    p = *pos;

    for (i = 0; i < n && p < last; i++) {
        end = ngx_strlchr(p, last, ' ');
        if (end == NULL) {
            end = last;
        }

        word[i] = p;
        len[i] = end - p;
        p = end + 1;
    }

    *pos = p;

    return i;
}


/*
 * The next entry of a notification's list, "<id> <token>", followed by
 * "<batch>" where "batch" is wanted: "park" is the connect it names if
 * that is still parked here (NULL if not, or if the entry is malformed).
 * NGX_DONE: the list ended.
 */

static ngx_int_t
ngx_bayeux_redis_named(ngx_bayeux_redis_t *rd, u_char **pos, u_char *last,
    ngx_int_t *batch, ngx_bayeux_redis_park_t **park)
{
    u_char                   *p, *word[3];
    size_t                    len[3];
    ngx_int_t                 key;
    ngx_uint_t                n;
    ngx_bayeux_redis_park_t  *found;

    n = (batch == NULL) ? 2 : 3;
    p = *pos;

    if (ngx_bayeux_redis_words(&p, last, word, len, n) < n) {
        return NGX_DONE;
    }

    *pos = p;
    *park = NULL;

    key = ngx_atoi(word[1], len[1]);

    if (key == NGX_ERROR || len[0] != NGX_BAYEUX_CLIENT_ID_LEN) {
        return NGX_OK;
    }

    if (batch) {
        *batch = ngx_atoi(word[2], len[2]);

        if (*batch == NGX_ERROR) {
            return NGX_OK;
        }
    }

    found = ngx_bayeux_redis_park_find(rd, (ngx_rbtree_key_t) key);

    if (found != NULL
        && ngx_memcmp(found->id, word[0], NGX_BAYEUX_CLIENT_ID_LEN) == 0)
    {
        *park = found;
    }

    return NGX_OK;
}


/*
 * "<id> <token> <seq> <batch> <left> <period>\n<subscription>\n...": the
 * script held the session of a connect parked here (hold_session()): from
 * now on the stream's messages after "seq" for its subscriptions are
 * given by this worker; "batch" is the session's last batch (the ack
 * extension's), "left" the milliseconds before bayeux_max_inactivity may
 * end it, "period" the directive's ("-": never).
 */

static void
ngx_bayeux_redis_hold(ngx_bayeux_redis_t *rd, u_char *p, u_char *last)
{
    u_char                   *nl, *word[4];
    off_t                     seq;
    size_t                    len[4];
    ngx_int_t                 batch, left, period;
    ngx_uint_t                unlimited;
    ngx_bayeux_redis_park_t  *park;

    nl = ngx_strlchr(p, last, '\n');
    if (nl == NULL) {
        nl = last;
    }

    /*
     * A connect that went away, or whose take is in flight, is let go by
     * the script from the number it recorded: nothing was given here.
     */

    if (ngx_bayeux_redis_named(rd, &p, nl, NULL, &park) != NGX_OK
        || park == NULL || park->held
        || park->state == NGX_BAYEUX_PARK_TAKING
        || ngx_bayeux_redis_words(&p, nl, word, len, 4) < 4)
    {
        return;
    }

    seq = ngx_atoof(word[0], len[0]);
    batch = ngx_atoi(word[1], len[1]);
    unlimited = (len[2] == 1 && word[2][0] == '-');
    left = unlimited ? 0 : ngx_atoi(word[2], len[2]);
    period = unlimited ? 0 : ngx_atoi(word[3], len[3]);

    if (seq == NGX_ERROR || batch == NGX_ERROR || left == NGX_ERROR
        || period == NGX_ERROR)
    {
        return;
    }

    if (park->waiter == NULL && park->state != NGX_BAYEUX_PARK_KEPT) {
        /* its connect went away: unparked once its reply comes */
        ngx_bayeux_redis_unsettle(park);
        return;
    }

    /* (kept: its connect, answered at once, held it; the reply came first) */

    park->cursor = (uint64_t) seq;
    park->batch = (ngx_uint_t) batch;

    if (!unlimited) {
        park->inactivity = 1;
        park->inactive_at = ngx_current_msec + left;
        park->period = period;
    }

    park->held = ngx_bayeux_redis_held_add(&rd->held, park,
                                           nl < last ? nl + 1 : last, last);

    if (park->held == NULL) {
        /* not indexed, so not given: let go at once */
        ngx_bayeux_redis_let_go(park);
        return;
    }

    ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_SESSIONS_HELD, 1);

    if (park->polling) {
        ngx_bayeux_redis_index(park);

    } else {
        rd->pushed++;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: session %*s held",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);
}


/*
 * "<id> <token>\n<subscription>\n...": a session held here subscribed or
 * unsubscribed (the script's resubscribed()); the stream's messages that
 * come after this are given by its new subscriptions.  Where a take of
 * the session is in flight, the script lets it go by what Redis holds.
 */

static void
ngx_bayeux_redis_resubscribed(ngx_bayeux_redis_t *rd, u_char *p,
    u_char *last)
{
    u_char                   *nl;
    ngx_bayeux_redis_held_t  *held;
    ngx_bayeux_redis_park_t  *park;

    nl = ngx_strlchr(p, last, '\n');
    if (nl == NULL) {
        nl = last;
    }

    if (ngx_bayeux_redis_named(rd, &p, nl, NULL, &park) != NGX_OK
        || park == NULL || park->held == NULL)
    {
        return;
    }

    held = ngx_bayeux_redis_held_add(&rd->held, park,
                                     nl < last ? nl + 1 : last, last);

    if (held == NULL) {
        /* the script learns them instead */
        ngx_bayeux_redis_let_go(park);
        return;
    }

    ngx_bayeux_redis_held_remove(&rd->held, park->held);
    park->held = held;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: session %*s resubscribed",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);
}


/*
 * "<channel>\n<seq> <publisher> <lazy> <act>\n<message>", on the stream:
 * a message for the sessions the workers hold.  "publisher" is the
 * session that must not receive it, "lazy" and "act" are the publish's
 * ('-': none).  A lazy message is not given here: the session is let go,
 * and the script queues it as a publish does.  One whose delivery is its
 * receivers' activity ("d") moves their inactivity deadline; Redis learns
 * of it from the logs when the session is let go (held_activity()).
 */

static void
ngx_bayeux_redis_streamed(ngx_bayeux_redis_t *rd, u_char *p, u_char *last)
{
    u_char                   *nl, *word[4];
    off_t                     seq;
    size_t                    len[4];
    ngx_int_t                 rc;
    uintptr_t                *keys;
    ngx_str_t                 channel, message;
    ngx_uint_t                i, n, lazy, activity;
    ngx_bayeux_redis_park_t  *park, **found;

    nl = ngx_strlchr(p, last, '\n');
    if (nl == NULL) {
        return;
    }

    channel.data = p;
    channel.len = nl - p;
    p = nl + 1;

    nl = ngx_strlchr(p, last, '\n');
    if (nl == NULL) {
        return;
    }

    message.data = nl + 1;
    message.len = last - message.data;

    if (ngx_bayeux_redis_words(&p, nl, word, len, 4) < 4) {
        return;
    }

    seq = ngx_atoof(word[0], len[0]);

    if (seq == NGX_ERROR || len[2] == 0 || len[3] == 0) {
        return;
    }

    lazy = (word[2][0] != '-');
    activity = (word[3][0] == 'd');

    if ((uint64_t) seq > rd->stream_seq) {
        rd->stream_seq = seq;

        if (!ngx_queue_empty(&rd->catching)) {
            /* (their "gv" is built once this message is kept too) */
            ngx_bayeux_redis_caught_up(rd);
        }
    }

    rd->found.nelts = 0;

    if (ngx_bayeux_redis_held_find(&rd->held, &channel, &rd->found)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "bayeux: no memory to find the held sessions of a "
                      "message: every session held here is let go");
        ngx_bayeux_redis_let_held_go(rd, NGX_BAYEUX_REDIS_HELD_ALL);
        return;
    }

    /*
     * By token: giving to one may end others (their handlers run), which
     * are then no longer found.
     */

    found = rd->found.elts;
    keys = rd->found.elts;
    n = rd->found.nelts;

    for (i = 0; i < n; i++) {
        keys[i] = found[i]->node.key;
    }

    for (i = 0; i < n; i++) {
        park = ngx_bayeux_redis_park_find(rd, (ngx_rbtree_key_t) keys[i]);

        if (park == NULL || park->held == NULL
            || (uint64_t) seq <= park->cursor)
        {
            continue;
        }

        if (len[1] == NGX_BAYEUX_CLIENT_ID_LEN
            && ngx_memcmp(word[1], park->id, NGX_BAYEUX_CLIENT_ID_LEN) == 0)
        {
            /* its own, not broadcast to it (after those it was not given) */
            if (park->npending == 0) {
                park->cursor = seq;
            }

            continue;
        }

        if (park->polling && !lazy && park->state != NGX_BAYEUX_PARK_TAKING)
        {
            rc = ngx_bayeux_redis_pend(park, seq, &message);

            if (rc == NGX_OK) {
                ngx_bayeux_redis_active(park, activity);

                if (park->state == NGX_BAYEUX_PARK_PARKED && park->waiter) {
                    ngx_bayeux_redis_confirm(park);
                }

                continue;
            }

            if (park->state == NGX_BAYEUX_PARK_KEPT) {
                /* its queue is full: the script ends it, counting all */
                park->missed = park->npending + 1;
                park->cursor = seq;
                ngx_bayeux_redis_unpark(park);
                continue;
            }

            /* more than its queue holds: the script finds it overflowed */
            ngx_bayeux_redis_let_go(park);
            continue;
        }

        if (lazy || park->state != NGX_BAYEUX_PARK_PARKED
            || park->waiter == NULL)
        {
            ngx_bayeux_redis_let_go(park);
            continue;
        }

        ngx_bayeux_redis_active(park, activity);
        ngx_bayeux_redis_give(park, seq, &message);
    }

    if (rd->stream_seq > rd->given_seq && !rd->given.posted) {
        ngx_post_event(&rd->given, &ngx_posted_events);
    }
}


/* a message given counts as activity (bayeux_max_inactivity client_server) */

static void
ngx_bayeux_redis_active(ngx_bayeux_redis_park_t *park, ngx_uint_t activity)
{
    if (activity && park->inactivity) {
        park->inactive_at = ngx_current_msec + park->period;
    }
}


/*
 * How far this worker gave the stream to the sessions it holds, written
 * once per turn of the event loop: a session held here that another
 * worker's connect takes over (this one died, or was stopped) is given
 * again only what came after (the script's connect()), not all since
 * it was held.
 */

static void
ngx_bayeux_redis_given_handler(ngx_event_t *ev)
{
    u_char                   seq[NGX_INT64_LEN];
    ngx_bayeux_redis_t      *rd = ev->data;
    ngx_bayeux_redis_cmd_t  *cmd;

    if (rd->state != NGX_BAYEUX_REDIS_UP || rd->unsettled
        || rd->stream_seq <= rd->given_seq || rd->pushed == 0)
    {
        return;
    }

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_GIVEN, 0,
                                      rd->channel.len + NGX_INT64_LEN);
    if (cmd == NULL) {
        return;
    }

    ngx_bayeux_redis_cmd_arg(cmd, rd->channel.data, rd->channel.len);
    ngx_bayeux_redis_cmd_arg(cmd, seq,
                             ngx_sprintf(seq, "%uL", rd->stream_seq) - seq);

    rd->given_seq = rd->stream_seq;

    ngx_bayeux_redis_submit(cmd);
}


/* a held park neither given a message nor let go yet */

static void
ngx_bayeux_redis_unsettle(ngx_bayeux_redis_park_t *park)
{
    if (!park->unsettled) {
        park->unsettled = 1;
        park->redis->unsettled++;
    }
}


/* ... now is: a command for it is sent, or it is gone */

static void
ngx_bayeux_redis_settled(ngx_bayeux_redis_park_t *park)
{
    ngx_bayeux_redis_t  *rd;

    if (!park->unsettled) {
        return;
    }

    rd = park->redis;

    park->unsettled = 0;

    if (--rd->unsettled == 0 && rd->stream_seq > rd->given_seq
        && !rd->given.posted)
    {
        ngx_post_event(&rd->given, &ngx_posted_events);
    }
}


/*
 * A held session given a message: its waiter's handler pushes it and
 * parks the connect again (ngx_bayeux_redis_connect_op() takes it back
 * without a command); if it does not, the script lets the session go
 * from this message on.
 */

static void
ngx_bayeux_redis_give(ngx_bayeux_redis_park_t *park, uint64_t seq,
    ngx_str_t *message)
{
    ngx_bayeux_redis_t   *rd;
    ngx_bayeux_waiter_t  *w;

    rd = park->redis;
    w = park->waiter;

    if (ngx_bayeux_redis_one_message(w, message) != NGX_OK) {
        /* the message stays in the log, after the cursor */
        ngx_bayeux_redis_let_go(park);
        return;
    }

    park->cursor = seq;
    park->waiter = NULL;
    w->engine_data = NULL;

    rd->giving = park;
    rd->giving_waiter = w;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: held session %*s given a message",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);

    w->handler(w, NGX_BAYEUX_WAKE_MESSAGES);

    rd->giving = NULL;
    rd->giving_waiter = NULL;

    if (park->waiter == NULL) {

        if (park->handed) {
            /* a connect of its own lets it go */
            ngx_rbtree_delete(&rd->parks, &park->node);
            ngx_bayeux_redis_park_free(park);
            return;
        }

        /* paused, answered or gone */
        ngx_bayeux_redis_unpark(park);
        return;
    }

    if (park->released && park->state == NGX_BAYEUX_PARK_PARKED) {
        ngx_bayeux_redis_take(park, "r");
    }
}


/* a held session the worker does not give to: the script takes it back */

static void
ngx_bayeux_redis_let_go(ngx_bayeux_redis_park_t *park)
{
    park->behind = 1;

    if (park->state == NGX_BAYEUX_PARK_PARKED) {
        ngx_bayeux_redis_take(park, "w");
        return;
    }

    if (park->state == NGX_BAYEUX_PARK_KEPT) {
        ngx_bayeux_redis_unpark(park);
        return;
    }

    /* taken once the command in flight is answered */
    park->notified = 1;
    ngx_bayeux_redis_unsettle(park);
}


/*
 * The cursor argument of a park's command: where the script lets its held
 * session go from ('': not held here); the session is no longer given to
 * here.  The stream comes in order, so a session given every message it
 * matched has had all up to the last one seen, whatever their channel:
 * its cursor keeps up with the stream, and the log's trimming never
 * passes it.
 */

static size_t
ngx_bayeux_redis_cursor(ngx_bayeux_redis_park_t *park, u_char *buf)
{
    size_t  len;

    ngx_bayeux_redis_settled(park);
    ngx_bayeux_redis_unindex(park);

    if (park->held == NULL) {
        return 0;
    }

    /* (a batch given and not acknowledged: let go from before it) */

    len = ngx_sprintf(buf, "%uL",
                      park->unacked ? park->acked
                                    : ngx_bayeux_redis_given_up_to(park))
          - buf;

    ngx_bayeux_redis_unhold(park);

    /* what was kept for it is in the logs after the cursor */
    ngx_bayeux_redis_pending_free(park);

    return len;
}


static uint64_t
ngx_bayeux_redis_given_up_to(ngx_bayeux_redis_park_t *park)
{
    if (park->behind || park->npending
        || park->redis->stream_seq < park->cursor)
    {
        return park->cursor;
    }

    return park->redis->stream_seq;
}


static void
ngx_bayeux_redis_park_free(ngx_bayeux_redis_park_t *park)
{
    ngx_bayeux_redis_settled(park);
    ngx_bayeux_redis_unindex(park);
    ngx_bayeux_redis_pending_free(park);

    if (park->queued) {
        ngx_queue_remove(&park->confirm);
        park->redis->nconfirms--;
    }

    if (park->catching) {
        ngx_queue_remove(&park->confirm);
    }

    if (park->held) {
        ngx_bayeux_redis_unhold(park);
    }

    ngx_free(park);
}


/* its session is no longer given to here */

static void
ngx_bayeux_redis_unhold(ngx_bayeux_redis_park_t *park)
{
    ngx_bayeux_redis_t  *rd;

    rd = park->redis;

    ngx_bayeux_redis_held_remove(&rd->held, park->held);
    park->held = NULL;

    if (!park->polling) {
        rd->pushed--;
    }

    ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_SESSIONS_HELD, -1);
}


/*
 * Long-polling sessions held between connects.  A reply gives what was
 * kept for the session once "gv" has written, in Redis, the last message
 * it gives: a connect that comes elsewhere next, or after this worker
 * died, lets the session go from there, exactly.  One call a turn of the
 * event loop confirms the replies of all.
 */

static ngx_bayeux_redis_park_t *
ngx_bayeux_redis_kept_find(ngx_bayeux_redis_t *rd, u_char *id)
{
    ngx_str_t        name;
    ngx_str_node_t  *sn;

    name.data = id;
    name.len = NGX_BAYEUX_CLIENT_ID_LEN;

    sn = ngx_str_rbtree_lookup(&rd->sessions, &name,
                               ngx_crc32_short(id, NGX_BAYEUX_CLIENT_ID_LEN));
    if (sn == NULL) {
        return NULL;
    }

    return (ngx_bayeux_redis_park_t *)
               ((u_char *) sn - offsetof(ngx_bayeux_redis_park_t, session));
}


/* found by the session's id, unless another connect of it already is */

static void
ngx_bayeux_redis_index(ngx_bayeux_redis_park_t *park)
{
    ngx_bayeux_redis_t  *rd;

    rd = park->redis;

    if (park->indexed || ngx_bayeux_redis_kept_find(rd, park->id) != NULL) {
        return;
    }

    park->session.str.data = park->id;
    park->session.str.len = NGX_BAYEUX_CLIENT_ID_LEN;
    park->session.node.key = ngx_crc32_short(park->id,
                                             NGX_BAYEUX_CLIENT_ID_LEN);

    ngx_rbtree_insert(&rd->sessions, &park->session.node);
    park->indexed = 1;
}


static void
ngx_bayeux_redis_unindex(ngx_bayeux_redis_park_t *park)
{
    if (park->indexed) {
        ngx_rbtree_delete(&park->redis->sessions, &park->session.node);
        park->indexed = 0;
    }
}


/*
 * A message of the stream kept until a reply gives it; NGX_DECLINED: it
 * is one more than the session's queue may hold (bayeux_max_queue,
 * bayeux_max_queue_size).
 */

static ngx_int_t
ngx_bayeux_redis_pend(ngx_bayeux_redis_park_t *park, uint64_t seq,
    ngx_str_t *message)
{
    ngx_bayeux_redis_t          *rd;
    ngx_bayeux_redis_pending_t  *m;

    rd = park->redis;

    if ((rd->max_queue_n && park->npending >= rd->max_queue_n)
        || (rd->max_queue_size
            && park->pending_size + message->len > rd->max_queue_size))
    {
        return NGX_DECLINED;
    }

    m = ngx_alloc(offsetof(ngx_bayeux_redis_pending_t, data) + message->len,
                  rd->log);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->seq = seq;
    m->len = message->len;
    ngx_memcpy(m->data, message->data, message->len);

    ngx_queue_insert_tail(&park->pending, &m->queue);
    park->npending++;
    park->pending_size += message->len;

    return NGX_OK;
}


static void
ngx_bayeux_redis_pending_free(ngx_bayeux_redis_park_t *park)
{
    ngx_queue_t  *q;

    if (!park->polling) {
        return;
    }

    while (!ngx_queue_empty(&park->pending)) {
        q = ngx_queue_head(&park->pending);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_bayeux_redis_pending_t, queue));
    }

    park->npending = 0;
    park->pending_size = 0;
}


/*
 * A parked connect given what was kept: "gv" first, once this turn of the
 * event loop has read what the stream brought (ngx_bayeux_redis_confirm_
 * handler() takes the last message then): a connect and the message of a
 * publish answered before it may come in the same turn, either first.
 */

static void
ngx_bayeux_redis_confirm(ngx_bayeux_redis_park_t *park)
{
    ngx_bayeux_redis_t  *rd;

    rd = park->redis;

    park->state = NGX_BAYEUX_PARK_CONFIRMING;
    park->queued = 1;

    ngx_queue_insert_tail(&rd->confirms, &park->confirm);
    rd->nconfirms++;

    if (!rd->confirm.posted) {
        ngx_post_event(&rd->confirm, &ngx_posted_events);
    }
}


/*
 * The batch a confirmed reply gives, as the script's "ak" lists it:
 * "<batch>:<messages>:<bytes>,", for a connect that acknowledges; empty
 * for another.
 */

static u_char *
ngx_bayeux_redis_batch_text(ngx_bayeux_redis_park_t *park, u_char *buf)
{
    size_t      size;
    ngx_uint_t  n;

    if (!park->ack) {
        return buf;
    }

    n = ngx_bayeux_redis_confirmed(park, &size);

    return ngx_sprintf(buf, "%ui:%ui:%uz,", park->batch + 1, n, size);
}


/* how many of the messages kept, and their bytes, a confirmed reply gives */

static ngx_uint_t
ngx_bayeux_redis_confirmed(ngx_bayeux_redis_park_t *park, size_t *size)
{
    ngx_uint_t                   n;
    ngx_queue_t                 *q;
    ngx_bayeux_redis_pending_t  *m;

    n = 0;
    *size = 0;

    for (q = ngx_queue_head(&park->pending);
         q != ngx_queue_sentinel(&park->pending);
         q = ngx_queue_next(q))
    {
        m = ngx_queue_data(q, ngx_bayeux_redis_pending_t, queue);

        if (m->seq > park->confirming) {
            break;
        }

        n++;
        *size += m->len;
    }

    return n;
}


static void
ngx_bayeux_redis_confirm_handler(ngx_event_t *ev)
{
    u_char                       seq[NGX_INT64_LEN];
    u_char                       batch[NGX_BAYEUX_REDIS_BATCH_LEN];
    size_t                       size;
    ngx_uint_t                   i, n;
    ngx_queue_t                 *q;
    ngx_bayeux_redis_t          *rd;
    ngx_bayeux_redis_cmd_t      *cmd;
    ngx_bayeux_redis_park_t     *park;
    ngx_bayeux_redis_pending_t  *m;

    rd = ev->data;

    while (rd->nconfirms) {
        n = ngx_min(rd->nconfirms, NGX_BAYEUX_REDIS_CONFIRM_MAX);

        size = rd->channel.len + NGX_INT64_LEN
               + (n + 1) * sizeof(ngx_bayeux_redis_park_t *)
               + n * (NGX_BAYEUX_CLIENT_ID_LEN + NGX_INT_T_LEN
                      + NGX_INT64_LEN + NGX_BAYEUX_REDIS_BATCH_LEN);

        cmd = NULL;

        if (rd->state == NGX_BAYEUX_REDIS_UP) {
            cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_CONFIRM,
                                              5 * n, size);
        }

        if (cmd) {
            cmd->parks = (ngx_bayeux_redis_park_t **)
                             ngx_align_ptr(cmd->last, sizeof(void *));
            cmd->last = (u_char *) (cmd->parks + n);
            cmd->n = n;

            ngx_bayeux_redis_cmd_arg(cmd, rd->channel.data, rd->channel.len);
            ngx_bayeux_redis_cmd_arg(cmd, seq,
                                     ngx_sprintf(seq, "%uL", rd->stream_seq)
                                     - seq);
        }

        for (i = 0; i < n; i++) {
            q = ngx_queue_head(&rd->confirms);
            ngx_queue_remove(q);
            rd->nconfirms--;

            park = ngx_queue_data(q, ngx_bayeux_redis_park_t, confirm);
            park->queued = 0;

            m = ngx_queue_data(ngx_queue_last(&park->pending),
                               ngx_bayeux_redis_pending_t, queue);
            park->confirming = m->seq;

            if (cmd == NULL) {
                /* nothing written: what was kept is still after "h" */
                ngx_bayeux_redis_confirm_result(park, 0);
                continue;
            }

            ngx_bayeux_redis_cmd_arg(cmd, park->id, NGX_BAYEUX_CLIENT_ID_LEN);
            ngx_bayeux_redis_cmd_arg(cmd, park->token.data, park->token.len);
            ngx_bayeux_redis_cmd_arg(cmd, seq,
                                     ngx_sprintf(seq, "%uL", park->confirming)
                                     - seq);
            ngx_bayeux_redis_cmd_arg(cmd, batch,
                                     ngx_bayeux_redis_batch_text(park, batch)
                                     - batch);
            ngx_bayeux_redis_cmd_arg(cmd, (u_char *) "1",
                                     park->read_up ? 0 : 1);
            cmd->parks[i] = park;
        }

        if (cmd) {
            ngx_bayeux_redis_submit(cmd);
        }
    }
}


static void
ngx_bayeux_redis_confirm_done(ngx_bayeux_redis_cmd_t *cmd, redisReply *reply)
{
    off_t        head;
    ngx_int_t    code;
    ngx_uint_t   i, valid;
    redisReply  *r;

    /* the codes, then Redis's last sequence number */

    valid = (reply && reply->type == REDIS_REPLY_ARRAY
             && reply->elements == cmd->n + 1
             && reply->element[cmd->n]->type == REDIS_REPLY_STRING);

    head = valid ? ngx_atoof((u_char *) reply->element[cmd->n]->str,
                             reply->element[cmd->n]->len)
                 : NGX_ERROR;

    valid = (head != NGX_ERROR);

    /* a CONFIRMING park is freed by nobody but its own result */

    for (i = 0; i < cmd->n; i++) {

        if (reply == NULL) {
            /*
             * the link broke: it may have been written, so it is given,
             * once more perhaps rather than never
             */
            code = 1;

        } else if (valid && reply->element[i]->type == REDIS_REPLY_INTEGER)
        {
            r = reply->element[i];
            code = (ngx_int_t) r->integer;

        } else {
            code = 0;
        }

        if (code == 2) {
            ngx_bayeux_redis_catch_up(cmd->parks[i], (uint64_t) head);
            continue;
        }

        ngx_bayeux_redis_confirm_result(cmd->parks[i], code);
    }
}


/*
 * Its "gv" wrote nothing: Redis ran a message for the session that this
 * worker had not read from the stream; the reply waits until it has,
 * unless it has already
 */

static void
ngx_bayeux_redis_catch_up(ngx_bayeux_redis_park_t *park, uint64_t head)
{
    ngx_bayeux_redis_t  *rd;

    rd = park->redis;

    if (park->waiter == NULL) {
        /* its client went away: let go from before what was kept */
        park->state = NGX_BAYEUX_PARK_PARKED;
        ngx_bayeux_redis_unpark(park);
        return;
    }

    park->read_up = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: held session %*s waits for the stream",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);

    if (rd->stream_seq >= head) {
        ngx_bayeux_redis_confirm(park);
        return;
    }

    park->head = head;
    park->catching = 1;
    ngx_queue_insert_tail(&rd->catching, &park->confirm);
}


/* the stream reached what some parks wait for: their "gv" again */

static void
ngx_bayeux_redis_caught_up(ngx_bayeux_redis_t *rd)
{
    ngx_queue_t              *q, *next;
    ngx_bayeux_redis_park_t  *park;

    for (q = ngx_queue_head(&rd->catching);
         q != ngx_queue_sentinel(&rd->catching);
         q = next)
    {
        next = ngx_queue_next(q);
        park = ngx_queue_data(q, ngx_bayeux_redis_park_t, confirm);

        if (park->head > rd->stream_seq) {
            continue;
        }

        ngx_queue_remove(q);
        park->catching = 0;

        ngx_bayeux_redis_confirm(park);
    }
}


/*
 * "code": 1 written, -1 the session is no longer held by this connect,
 * -2 it is gone, 0 nothing was written
 */

static void
ngx_bayeux_redis_confirm_result(ngx_bayeux_redis_park_t *park,
    ngx_int_t code)
{
    ngx_bayeux_wake_e     reason;
    ngx_bayeux_waiter_t  *w;

    w = park->waiter;
    park->state = NGX_BAYEUX_PARK_PARKED;
    park->read_up = 0;

    if (code != 1) {
        reason = (code == -1) ? NGX_BAYEUX_WAKE_SUPERSEDED
                 : (code == -2) ? NGX_BAYEUX_WAKE_DISCONNECTED
                 : NGX_BAYEUX_WAKE_ERROR;

        if (w) {
            w->messages = NULL;
            ngx_bayeux_redis_answered(park, reason);
            return;
        }

        ngx_rbtree_delete(&park->redis->parks, &park->node);
        ngx_bayeux_redis_park_free(park);
        return;
    }

    if (w == NULL) {
        /* written, but its client went away: let go from before them */
        ngx_bayeux_redis_unpark(park);
        return;
    }

    if (park->ack) {
        /* Redis keeps them as the batch until a connect acknowledges it */
        park->acked = park->cursor;
        park->unacked = 1;
        w->batch = ++park->batch;
    }

    if (ngx_bayeux_redis_give_pending(park) != NGX_OK) {
        w->engine_data = NULL;
        park->waiter = NULL;
        ngx_bayeux_redis_unpark(park);
        w->messages = NULL;
        w->handler(w, NGX_BAYEUX_WAKE_ERROR);
        return;
    }

    ngx_bayeux_redis_reply_kept(park, NGX_BAYEUX_WAKE_MESSAGES);
}


/* w->messages: what was kept up to the message confirmed, given */

static ngx_int_t
ngx_bayeux_redis_give_pending(ngx_bayeux_redis_park_t *park)
{
    size_t                       size;
    ngx_uint_t                   i, n;
    ngx_queue_t                 *q;
    ngx_bayeux_waiter_t         *w;
    ngx_bayeux_redis_pending_t  *m;

    w = park->waiter;
    n = ngx_bayeux_redis_confirmed(park, &size);

    w->messages = ngx_array_create(w->pool, n ? n : 1, sizeof(ngx_str_t));
    if (w->messages == NULL) {
        return NGX_ERROR;
    }

    q = ngx_queue_head(&park->pending);

    for (i = 0; i < n; i++) {
        m = ngx_queue_data(q, ngx_bayeux_redis_pending_t, queue);

        if (ngx_bayeux_redis_copy_message(w, m->data, m->len) != NGX_OK) {
            w->messages = NULL;
            return NGX_ERROR;
        }

        q = ngx_queue_next(q);
    }

    for (i = 0; i < n; i++) {
        q = ngx_queue_head(&park->pending);
        ngx_queue_remove(q);

        m = ngx_queue_data(q, ngx_bayeux_redis_pending_t, queue);
        park->npending--;
        park->pending_size -= m->len;
        ngx_free(m);
    }

    park->cursor = park->confirming;

    return NGX_OK;
}


/*
 * A long-polling connect answered without ending the hold: the park
 * stays, for the session's next connect, which finds it by id.
 */

static void
ngx_bayeux_redis_reply_kept(ngx_bayeux_redis_park_t *park,
    ngx_bayeux_wake_e reason)
{
    ngx_rbtree_key_t      key;
    ngx_bayeux_redis_t   *rd;
    ngx_bayeux_waiter_t  *w;

    rd = park->redis;
    w = park->waiter;
    key = park->node.key;

    ngx_bayeux_redis_keep(park);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: held session %*s answered, kept",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);

    w->handler(w, reason);

    /* a notification that came meanwhile lets it go now */

    park = ngx_bayeux_redis_park_find(rd, key);

    if (park && park->state == NGX_BAYEUX_PARK_KEPT && park->notified) {
        ngx_bayeux_redis_unpark(park);
    }
}


/* the park outlives its waiter, if any, for the session's next connect */

static void
ngx_bayeux_redis_keep(ngx_bayeux_redis_park_t *park)
{
    if (park->waiter) {
        park->waiter->engine_data = NULL;
        park->waiter = NULL;
    }

    park->state = NGX_BAYEUX_PARK_KEPT;
    park->released = 0;
    park->kept_at = ngx_current_msec;
}


/*
 * A connect answered at once held its long-polling session: the park
 * stays, as one answered by ngx_bayeux_redis_reply_kept() does, unless
 * its client went away, another connect of the session came meanwhile
 * (it is no longer found by id), or the stream has a message it cannot
 * keep for it: then the script lets the session go.
 */

static void
ngx_bayeux_redis_keep_answered(ngx_bayeux_redis_park_t *park)
{
    ngx_uint_t  gone;

    gone = (park->waiter == NULL || !park->indexed || park->notified);

    ngx_bayeux_redis_keep(park);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, park->redis->log, 0,
                   "bayeux redis: session %*s answered at once, kept",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);

    if (gone) {
        ngx_bayeux_redis_unpark(park);
    }
}


/*
 * Every held session (NGX_BAYEUX_REDIS_HELD_ALL), or the kept ones whose
 * client did not come back within a period (_KEPT_IDLE), or all the kept
 * ones (_KEPT_ALL), are let go: the script queues what this worker did
 * not give them, and a kept one's lifetime runs from its last renewal.
 * With the link down (_KEPT_FORGET) the kept ones are forgotten: Redis
 * keeps them held from their last "gv".
 */

static void
ngx_bayeux_redis_let_held_go(ngx_bayeux_redis_t *rd, ngx_uint_t which)
{
    ngx_rbtree_node_t        *node, *next;
    ngx_bayeux_redis_park_t  *park;

    if (rd->parks.root == rd->parks.sentinel) {
        return;
    }

    /* a take that fails answers, and frees, its own park only */

    for (node = ngx_rbtree_min(rd->parks.root, rd->parks.sentinel);
         node;
         node = next)
    {
        next = ngx_rbtree_next(&rd->parks, node);
        park = (ngx_bayeux_redis_park_t *) node;

        if (which == NGX_BAYEUX_REDIS_HELD_ALL) {
            if (park->held) {
                ngx_bayeux_redis_let_go(park);
            }

            continue;
        }

        if (park->state != NGX_BAYEUX_PARK_KEPT
            || (which == NGX_BAYEUX_REDIS_KEPT_IDLE
                && ngx_bayeux_redis_renewed(park)))
        {
            continue;
        }

        if (which == NGX_BAYEUX_REDIS_KEPT_FORGET) {
            ngx_rbtree_delete(&rd->parks, node);
            ngx_bayeux_redis_park_free(park);

        } else {
            ngx_bayeux_redis_unpark(park);
        }
    }
}


/* a parked connect, or a kept session whose client came lately */

static ngx_uint_t
ngx_bayeux_redis_renewed(ngx_bayeux_redis_park_t *park)
{
    return park->state != NGX_BAYEUX_PARK_KEPT
           || ngx_current_msec - park->kept_at < park->redis->refresh;
}


/* operations */

static ngx_bayeux_redis_t *
ngx_bayeux_redis_session_shard(ngx_bayeux_op_t *op)
{
    ngx_bayeux_redis_shards_t  *shards = op->endpoint->data;

    return &shards->shard[ngx_bayeux_redis_shard_of(&op->client_id,
                                                    shards->n)];
}


static ngx_uint_t
ngx_bayeux_redis_shard_up(void *data, ngx_uint_t shard)
{
    ngx_bayeux_redis_shards_t  *shards = data;

    return shards->shard[shard].state == NGX_BAYEUX_REDIS_UP;
}


static void
ngx_bayeux_redis_handshake(ngx_bayeux_op_t *op)
{
    u_char                     *id;
    ngx_int_t                   shard;
    ngx_bayeux_redis_t         *rd;
    ngx_bayeux_redis_cmd_t     *cmd;
    ngx_bayeux_redis_shards_t  *shards = op->endpoint->data;

    id = ngx_pnalloc(op->pool, NGX_BAYEUX_CLIENT_ID_LEN);
    if (id == NULL) {
        goto failed;
    }

    if (shards->n == 1) {
        shard = (ngx_bayeux_client_id(id) == NGX_OK) ? 0 : NGX_ERROR;

    } else if (op->user.len) {
        /* a user's sessions share its shard */
        shard = ngx_bayeux_redis_shard_client_id(id,
                                 ngx_bayeux_redis_shard_of(&op->user,
                                                           shards->n),
                                 shards->n, NULL, NULL);

    } else {
        /* any shard whose link is up */
        shard = ngx_bayeux_redis_shard_client_id(id,
                                                 NGX_BAYEUX_REDIS_ANY_SHARD,
                                                 shards->n,
                                                 ngx_bayeux_redis_shard_up,
                                                 shards);
    }

    if (shard == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, op->log, ngx_errno,
                      "bayeux: getrandom() failed");
        goto failed;
    }

    rd = &shards->shard[shard];

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_HANDSHAKE, 0,
                                      NGX_BAYEUX_CLIENT_ID_LEN
                                      + op->browser.len + op->grants.len
                                      + op->user.len + 1
                                      + rd->max_inactivity.len);
    if (cmd == NULL) {
        goto failed;
    }

    ngx_bayeux_redis_cmd_arg(cmd, id, NGX_BAYEUX_CLIENT_ID_LEN);
    ngx_bayeux_redis_cmd_arg(cmd, op->browser.data, op->browser.len);
    ngx_bayeux_redis_cmd_arg(cmd, op->grants.data, op->grants.len);
    ngx_bayeux_redis_cmd_arg(cmd, op->user.data, op->user.len);
    ngx_bayeux_redis_cmd_arg(cmd, (u_char *)
                             (op->endpoint->session_ended ? "1" : "0"), 1);
    ngx_bayeux_redis_cmd_arg(cmd, rd->max_inactivity.data,
                             rd->max_inactivity.len);

    /* the protocol reads it only if the handshake succeeds */

    op->client_id.data = id;
    op->client_id.len = NGX_BAYEUX_CLIENT_ID_LEN;

    cmd->op = op;

    ngx_bayeux_redis_submit(cmd);

    return;

failed:

    op->rc = NGX_ERROR;
    op->handler(op);
}


static void
ngx_bayeux_redis_connect_op(ngx_bayeux_op_t *op)
{
    u_char                    ack[NGX_INT_T_LEN], cursor[NGX_INT64_LEN];
    size_t                    ack_len, cursor_len;
    ngx_str_t                 token;
    ngx_uint_t                waits, polling, answering;
    ngx_bayeux_redis_t       *rd = ngx_bayeux_redis_session_shard(op);
    ngx_bayeux_redis_cmd_t   *cmd;
    ngx_bayeux_redis_park_t  *park, *kept;

    if (!ngx_bayeux_redis_valid_id(&op->client_id)) {
        op->rc = NGX_DECLINED;
        op->handler(op);
        return;
    }

    cursor_len = 0;
    park = rd->giving;

    if (park && op->waiter == rd->giving_waiter && park->waiter == NULL
        && !park->handed)
    {
        /* a held session given a message parks again */

        if (op->hold && op->waiter->stream && park->held) {
            park->waiter = op->waiter;
            op->waiter->engine_data = park;
            op->rc = NGX_AGAIN;
            op->handler(op);
            return;
        }

        /* the script lets it go, from the last message given here */
        park->handed = 1;
        cursor_len = ngx_bayeux_redis_cursor(park, cursor);
    }

    /*
     * A connect answered by its own reply (long-polling, or one that
     * acknowledges) may hold its session between connects; one that may
     * wait finds its session's kept park here.
     */

    waits = (op->hold && !op->waiter->stream);

    /*
     * One answered at once (a first connect, or one the client asks not
     * to hold) holds its long-polling session between connects too, as
     * the script says: its subscriptions then cost publishes nothing
     * from there on, not only once the next connect parks.
     */

    answering = (!op->hold && !op->waiter->stream);

    kept = cursor_len ? NULL : ngx_bayeux_redis_kept_find(rd,
                                                         op->client_id.data);

    /* (no browser, bayeux_trust_client_session on: no data either) */

    if (kept
        && (kept->browser.len != op->browser.len
            || (op->browser.len
                && ngx_memcmp(kept->browser.data, op->browser.data,
                              op->browser.len) != 0)))
    {
        /* not from the session's browser: the script says it is unknown */
        kept = NULL;
    }

    if (kept && kept->state == NGX_BAYEUX_PARK_KEPT && waits
        && kept->ack == (op->waiter->ack != NGX_BAYEUX_NO_ACK)
        && (!kept->unacked || op->waiter->ack >= (ngx_int_t) kept->batch)
        && (!kept->inactivity
            || (ngx_msec_int_t) (kept->inactive_at - ngx_current_msec) > 0))
    {
        /*
         * its session held here, what was given acknowledged if it is
         * acknowledged, and not yet possibly inactive: no command
         */

        kept->unacked = 0;
        kept->waiter = op->waiter;
        op->waiter->engine_data = kept;

        if (kept->npending) {
            ngx_bayeux_redis_confirm(kept);

        } else {
            kept->state = NGX_BAYEUX_PARK_PARKED;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "bayeux redis: held session %*s connects",
                       (size_t) NGX_BAYEUX_CLIENT_ID_LEN, kept->id);

        op->rc = NGX_AGAIN;
        op->handler(op);
        return;
    }

    if (kept && kept->state == NGX_BAYEUX_PARK_KEPT) {
        /* the script lets it go, from the last message given here */
        cursor_len = ngx_bayeux_redis_cursor(kept, cursor);
        ngx_rbtree_delete(&rd->parks, &kept->node);
        ngx_bayeux_redis_park_free(kept);

    } else if (kept) {
        /* a connect of it in flight: the script lets it go from "h" */
        ngx_bayeux_redis_unindex(kept);
    }

    park = NULL;
    ngx_str_null(&token);

    if (op->hold || answering) {

        /*
         * Known before the command is sent: a notification for it may
         * come before the reply, on the other connection.
         */

        polling = !op->waiter->stream;

        park = ngx_alloc(sizeof(ngx_bayeux_redis_park_t)
                         + (polling ? op->browser.len : 0), rd->log);
        if (park == NULL) {
            goto failed;
        }

        ngx_memzero(park, sizeof(ngx_bayeux_redis_park_t));

        if (polling) {
            park->polling = 1;
            park->ack = (op->waiter->ack != NGX_BAYEUX_NO_ACK);
            ngx_queue_init(&park->pending);

            park->browser.data = (u_char *) (park + 1);
            park->browser.len = op->browser.len;

            if (op->browser.len) {
                ngx_memcpy(park->browser.data, op->browser.data,
                           op->browser.len);
            }
        }

        park->redis = rd;
        park->waiter = op->waiter;
        park->stream = op->waiter->stream;
        park->state = NGX_BAYEUX_PARK_CONNECTING;
        park->node.key = ++rd->token;
        park->token.data = park->token_data;
        park->token.len = ngx_sprintf(park->token_data, "%ui", rd->token)
                          - park->token_data;
        ngx_memcpy(park->id, op->client_id.data, NGX_BAYEUX_CLIENT_ID_LEN);

        token = park->token;
    }

    ack_len = 0;

    if (op->waiter->ack != NGX_BAYEUX_NO_ACK) {
        ack_len = ngx_sprintf(ack, "%i", op->waiter->ack) - ack;
    }

    /*
     * the arguments of the batch's script call: id, browser, hold, token,
     * acknowledged batch, cursor
     */

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_CONNECT, 0,
                                      NGX_BAYEUX_CLIENT_ID_LEN
                                      + op->browser.len + 1 + token.len
                                      + ack_len + cursor_len);
    if (cmd == NULL) {
        ngx_free(park);
        goto failed;
    }

    ngx_bayeux_redis_cmd_arg(cmd, op->client_id.data, op->client_id.len);
    ngx_bayeux_redis_cmd_arg(cmd, op->browser.data, op->browser.len);
    ngx_bayeux_redis_cmd_arg(cmd, (u_char *)
                             (park ? (park->stream ? "2"
                                      : !op->hold ? "4"
                                      : park->polling ? "3" : "1")
                                   : "0"), 1);

    if (park) {
        ngx_rbtree_insert(&rd->parks, &park->node);
        op->waiter->engine_data = park;

        if (park->polling) {
            /*
             * found by the session's next connect here even before the
             * script's hold notification comes (a reply that holds the
             * session may come first)
             */
            ngx_bayeux_redis_index(park);
        }
    }

    ngx_bayeux_redis_cmd_arg(cmd, token.data, token.len);
    ngx_bayeux_redis_cmd_arg(cmd, ack, ack_len);
    ngx_bayeux_redis_cmd_arg(cmd, cursor, cursor_len);

    cmd->op = op;
    cmd->park = park;

    if (rd->state == NGX_BAYEUX_REDIS_DOWN) {
        ngx_bayeux_redis_cmd_done(cmd, NULL);
        return;
    }

    /*
     * Sent with the other connects of this event loop iteration, in one
     * script call, once the events are processed (or the link is up).
     */

    ngx_queue_insert_tail(&rd->connects, &cmd->queue);
    rd->nconnects++;

    if (!rd->flush.posted) {
        ngx_post_event(&rd->flush, &ngx_posted_events);
    }

    return;

failed:

    op->rc = NGX_ERROR;
    op->handler(op);
}


static void
ngx_bayeux_redis_subscribe(ngx_bayeux_op_t *op)
{
    ngx_bayeux_redis_session_op(op, NGX_BAYEUX_REDIS_SUBSCRIBE);
}


static void
ngx_bayeux_redis_unsubscribe(ngx_bayeux_op_t *op)
{
    ngx_bayeux_redis_session_op(op, NGX_BAYEUX_REDIS_UNSUBSCRIBE);
}


static void
ngx_bayeux_redis_disconnect(ngx_bayeux_op_t *op)
{
    ngx_bayeux_redis_session_op(op, NGX_BAYEUX_REDIS_DISCONNECT);
}


static void
ngx_bayeux_redis_touch(ngx_bayeux_op_t *op)
{
    ngx_bayeux_redis_session_op(op, NGX_BAYEUX_REDIS_TOUCH);
}


/* an operation on one session, with the channels of a (un)subscribe */

static void
ngx_bayeux_redis_session_op(ngx_bayeux_op_t *op, ngx_uint_t kind)
{
    size_t                   size;
    ngx_str_t               *ch, *act;
    ngx_uint_t               i, n, limit, bounds;
    ngx_bayeux_redis_t      *rd = ngx_bayeux_redis_session_shard(op);
    ngx_bayeux_redis_cmd_t  *cmd;

    if (!ngx_bayeux_redis_valid_id(&op->client_id)) {
        op->rc = NGX_DECLINED;
        op->handler(op);
        return;
    }

    ch = NULL;
    n = 0;
    size = op->client_id.len + op->browser.len;

    if (kind == NGX_BAYEUX_REDIS_SUBSCRIBE
        || kind == NGX_BAYEUX_REDIS_UNSUBSCRIBE)
    {
        ch = op->channels->elts;
        n = op->channels->nelts;

        for (i = 0; i < n; i++) {
            size += ch[i].len;
        }
    }

    limit = (kind == NGX_BAYEUX_REDIS_SUBSCRIBE);

    if (limit) {
        size += rd->max_subscriptions.len;
    }

    /* an unsubscribe may let a held session go: what it queues is bound */

    bounds = (kind == NGX_BAYEUX_REDIS_UNSUBSCRIBE);

    if (bounds) {
        size += rd->max_queue.len;
    }

    /* a disconnect ends the session: its activity does not matter */

    act = (kind == NGX_BAYEUX_REDIS_DISCONNECT)
          ? NULL : ngx_bayeux_redis_act(op, 0);

    if (act) {
        size += act->len;
    }

    cmd = ngx_bayeux_redis_cmd_create(rd, kind, n, size);
    if (cmd == NULL) {
        op->rc = NGX_ERROR;
        op->handler(op);
        return;
    }

    ngx_bayeux_redis_cmd_arg(cmd, op->client_id.data, op->client_id.len);
    ngx_bayeux_redis_cmd_arg(cmd, op->browser.data, op->browser.len);

    if (limit) {
        ngx_bayeux_redis_cmd_arg(cmd, rd->max_subscriptions.data,
                                 rd->max_subscriptions.len);
    }

    if (bounds) {
        ngx_bayeux_redis_cmd_arg(cmd, rd->max_queue.data, rd->max_queue.len);
    }

    if (act) {
        ngx_bayeux_redis_cmd_arg(cmd, act->data, act->len);
    }

    for (i = 0; i < n; i++) {
        ngx_bayeux_redis_cmd_arg(cmd, ch[i].data, ch[i].len);
    }

    cmd->op = op;

    ngx_bayeux_redis_submit(cmd);
}


static void
ngx_bayeux_redis_publish(ngx_bayeux_op_t *op)
{
    ngx_uint_t                  first;
    ngx_bayeux_redis_shards_t  *shards = op->endpoint->data;

    /* no publisher: the server's own */

    if (op->client_id.len && !ngx_bayeux_redis_valid_id(&op->client_id)) {
        op->rc = NGX_DECLINED;
        op->handler(op);
        return;
    }

    if (shards->n == 1) {
        ngx_bayeux_redis_publish_on(shards->shard, op, 1);
        return;
    }

    /* a publisher's session is checked in its shard before any delivers */

    first = op->client_id.len
            ? ngx_bayeux_redis_shard_of(&op->client_id, shards->n)
            : shards->n;

    ngx_bayeux_redis_fanout(op, shards->n, first,
                            ngx_bayeux_redis_publish_shard, shards);
}


static void
ngx_bayeux_redis_publish_shard(ngx_bayeux_op_t *op, ngx_uint_t shard,
    void *data)
{
    ngx_bayeux_redis_shards_t  *shards = data;

    ngx_bayeux_redis_publish_on(&shards->shard[shard], op,
                                op->client_id.len == 0
                                || shard == ngx_bayeux_redis_shard_of(
                                                &op->client_id, shards->n));
}


/*
 * "own": the publisher's session is in this shard (or there is none);
 * another shard is told "-", a publisher it neither checks nor counts
 */

static void
ngx_bayeux_redis_publish_on(ngx_bayeux_redis_t *rd, ngx_bayeux_op_t *op,
    ngx_uint_t own)
{
    u_char                  *buf;
    size_t                   size;
    ngx_str_t                pattern, *act, pub, browser;
    ngx_uint_t               n;
    ngx_bayeux_wildcards_t   w;
    ngx_bayeux_redis_cmd_t  *cmd;

    if (own) {
        pub = op->client_id;
        browser = op->browser;

    } else {
        ngx_str_set(&pub, "-");
        ngx_str_null(&browser);
    }

    buf = ngx_pnalloc(op->pool, op->channel.len + 2);
    if (buf == NULL) {
        goto failed;
    }

    /* the channel and every pattern that matches it, counted first */

    act = ngx_bayeux_redis_act(op, 1);

    n = 1;
    size = pub.len + browser.len + 1 + rd->max_queue.len
           + op->message.len + rd->lazy.len + act->len + op->channel.len;

    ngx_bayeux_wildcards_init(&w, &op->channel, buf);

    while (ngx_bayeux_wildcards_next(&w, &pattern) == NGX_OK) {
        n++;
        size += pattern.len;
    }

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_PUBLISH, n, size);
    if (cmd == NULL) {
        goto failed;
    }

    ngx_bayeux_redis_cmd_arg(cmd, pub.data, pub.len);
    ngx_bayeux_redis_cmd_arg(cmd, browser.data, browser.len);
    ngx_bayeux_redis_cmd_arg(cmd, (u_char *)
                             (op->endpoint->conf->broadcast_to_publisher
                              ? "1" : "0"), 1);
    ngx_bayeux_redis_cmd_arg(cmd, rd->max_queue.data, rd->max_queue.len);
    ngx_bayeux_redis_cmd_arg(cmd, op->message.data, op->message.len);
    ngx_bayeux_redis_cmd_arg(cmd, rd->lazy.data, op->lazy ? rd->lazy.len : 0);
    ngx_bayeux_redis_cmd_arg(cmd, act->data, act->len);
    ngx_bayeux_redis_cmd_arg(cmd, op->channel.data, op->channel.len);

    ngx_bayeux_wildcards_init(&w, &op->channel, buf);

    while (ngx_bayeux_wildcards_next(&w, &pattern) == NGX_OK) {
        ngx_bayeux_redis_cmd_arg(cmd, pattern.data, pattern.len);
    }

    cmd->op = op;

    ngx_bayeux_redis_submit(cmd);

    return;

failed:

    op->rc = NGX_ERROR;
    op->handler(op);
}


static void
ngx_bayeux_redis_release(ngx_bayeux_endpoint_t *ep, ngx_bayeux_waiter_t *w)
{
    ngx_bayeux_redis_park_t  *park = w->engine_data;

    if (park == NULL) {
        return;
    }

    if (park->state == NGX_BAYEUX_PARK_PARKED) {

        if (park->polling && park->held) {
            /* nothing came: the hold goes on, no command */
            w->messages = NULL;

            if (park->ack) {
                /* (the last batch, acknowledged, is named again) */
                w->batch = park->batch;
            }

            ngx_bayeux_redis_reply_kept(park, NGX_BAYEUX_WAKE_TIMEOUT);
            return;
        }

        ngx_bayeux_redis_take(park, "r");
        return;
    }

    /* answered when the command in flight is */

    park->released = 1;
}


static void
ngx_bayeux_redis_cancel(ngx_bayeux_endpoint_t *ep, ngx_bayeux_waiter_t *w)
{
    ngx_bayeux_redis_park_t  *park = w->engine_data;

    if (park == NULL) {
        return;
    }

    w->engine_data = NULL;
    park->waiter = NULL;

    if (park == park->redis->giving) {
        /* let go once its handler returns (ngx_bayeux_redis_give()) */
        return;
    }

    if (park->state == NGX_BAYEUX_PARK_PARKED) {
        ngx_bayeux_redis_unpark(park);
    }

    /* otherwise the reply in flight finds no waiter, and cleans up */
}


static void
ngx_bayeux_redis_op_done(ngx_bayeux_redis_cmd_t *cmd, redisReply *reply)
{
    ngx_int_t                 rc, code;
    ngx_bayeux_op_t          *op;
    ngx_rbtree_key_t          key;
    ngx_bayeux_redis_t       *rd;
    ngx_bayeux_redis_park_t  *park;

    op = cmd->op;
    park = cmd->park;
    rd = cmd->redis;

    if (reply == NULL) {
        rc = NGX_BUSY;
        goto done;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* "ERR" is a fault of ours; LOADING, BUSY, OOM, ... pass */
        rc = (ngx_strncmp(reply->str, "ERR", 3) == 0) ? NGX_ERROR : NGX_BUSY;
        goto done;
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        code = reply->integer;

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements
               && reply->element[0]->type == REDIS_REPLY_INTEGER)
    {
        code = reply->element[0]->integer;

    } else {
        rc = NGX_ERROR;
        goto done;
    }

    rc = ngx_bayeux_redis_kinds[cmd->kind].result(cmd, reply, code);

done:

    key = 0;

    if (park) {
        if (rc == NGX_AGAIN) {
            park->state = NGX_BAYEUX_PARK_PARKED;
            key = park->node.key;

        } else if (rc == NGX_OK && park->answered) {
            ngx_bayeux_redis_keep_answered(park);

        } else {
            ngx_rbtree_delete(&rd->parks, &park->node);

            if (park->waiter) {
                park->waiter->engine_data = NULL;
            }

            ngx_bayeux_redis_park_free(park);
        }
    }

    op->rc = rc;
    op->handler(op);

    if (key == 0) {
        return;
    }

    /* the protocol has the connect parked now; what came meanwhile */

    park = ngx_bayeux_redis_park_find(rd, key);

    if (park && park->state == NGX_BAYEUX_PARK_PARKED) {
        ngx_bayeux_redis_settle(park);
    }
}


/* the result of an operation, of its reply's code */

static ngx_int_t
ngx_bayeux_redis_handshake_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    ngx_bayeux_op_t  *op;

    /* 0: the id is taken */

    if (code != 1) {
        return NGX_ERROR;
    }

    op = cmd->op;

    if (op->endpoint->user_present && op->user.len
        && reply->type == REDIS_REPLY_ARRAY && reply->elements > 1
        && reply->element[1]->type == REDIS_REPLY_INTEGER
        && reply->element[1]->integer == 1)
    {
        op->endpoint->user_present(op->endpoint, &op->user);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_disconnect_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    redisReply  *id;

    if (code == -1) {
        return NGX_DECLINED;
    }

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 2
        && cmd->redis->endpoint->session_ended)
    {
        /* the clientId is the operation's */
        id = NULL;
        cmd->redis->ended_id = cmd->op->client_id;
        ngx_bayeux_redis_ended(cmd->redis, id, reply->element[1],
                               reply->element[2], NGX_BAYEUX_END_DISCONNECT);
    }

    return NGX_OK;
}


/*
 * Expired sessions are noticed by a sweep of every worker, each told
 * once: the script takes them from the set of deadlines atomically.
 */

static void
ngx_bayeux_redis_sweep(ngx_bayeux_redis_t *rd)
{
    ngx_bayeux_redis_cmd_t  *cmd;

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_SWEEP, 0,
                                      sizeof(NGX_BAYEUX_REDIS_SWEEP_MAX));
    if (cmd == NULL) {
        return;
    }

    ngx_bayeux_redis_cmd_arg(cmd, (u_char *) NGX_BAYEUX_REDIS_SWEEP_MAX,
                             sizeof(NGX_BAYEUX_REDIS_SWEEP_MAX) - 1);

    rd->sweeping = 1;

    ngx_bayeux_redis_submit(cmd);
}


static void
ngx_bayeux_redis_sweep_done(ngx_bayeux_redis_cmd_t *cmd, redisReply *reply)
{
    ngx_uint_t           i, n;
    ngx_bayeux_redis_t  *rd;

    rd = cmd->redis;
    rd->sweeping = 0;

    if (rd->exiting || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    n = reply->elements / 3;

    for (i = 0; i < n; i++) {
        ngx_bayeux_redis_ended(rd, reply->element[3 * i],
                               reply->element[3 * i + 1],
                               reply->element[3 * i + 2],
                               NGX_BAYEUX_END_EXPIRED);
    }

    /* a full sweep: there may be more */

    if (n == (ngx_uint_t) ngx_atoi((u_char *) NGX_BAYEUX_REDIS_SWEEP_MAX,
                                   sizeof(NGX_BAYEUX_REDIS_SWEEP_MAX) - 1))
    {
        ngx_bayeux_redis_sweep(rd);
    }
}


/*
 * Lazy messages are due by deadlines kept in Redis (the script's "L"),
 * which every worker of every host sweeps, a quarter of
 * bayeux_max_lazy_timeout apart: one script call per worker and period
 * whatever the traffic, and a lazy message goes at most a quarter late.
 * Deadlines in Redis, rather than notifications kept by the worker that
 * published, survive that worker: another one sweeps them, and a connect
 * that comes finds them past.
 */

static ngx_msec_t
ngx_bayeux_redis_lazy_period(ngx_bayeux_redis_t *rd)
{
    ngx_msec_t  period;

    period = rd->endpoint->conf->max_lazy_timeout / 4;

    return period < 10 ? 10 : period;
}


static void
ngx_bayeux_redis_lazy_handler(ngx_event_t *ev)
{
    ngx_bayeux_redis_t      *rd = ev->data;
    ngx_bayeux_redis_cmd_t  *cmd;

    if (rd->state == NGX_BAYEUX_REDIS_UP && !rd->lazy_sweeping) {

        cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_LAZY, 0,
                                          sizeof(NGX_BAYEUX_REDIS_LAZY_MAX));
        if (cmd) {
            ngx_bayeux_redis_cmd_arg(cmd, (u_char *) NGX_BAYEUX_REDIS_LAZY_MAX,
                                     sizeof(NGX_BAYEUX_REDIS_LAZY_MAX) - 1);
            rd->lazy_sweeping = 1;
            ngx_bayeux_redis_submit(cmd);
        }
    }

    ngx_add_timer(ev, ngx_bayeux_redis_lazy_period(rd));
}


static void
ngx_bayeux_redis_lazy_done(ngx_bayeux_redis_cmd_t *cmd, redisReply *reply)
{
    ngx_bayeux_redis_t  *rd;

    rd = cmd->redis;
    rd->lazy_sweeping = 0;

    if (rd->exiting || reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        return;
    }

    /* a full sweep: there may be more */

    if (reply->integer == ngx_atoi((u_char *) NGX_BAYEUX_REDIS_LAZY_MAX,
                                   sizeof(NGX_BAYEUX_REDIS_LAZY_MAX) - 1))
    {
        if (rd->lazy_sweep.timer_set) {
            ngx_del_timer(&rd->lazy_sweep);
        }

        ngx_bayeux_redis_lazy_handler(&rd->lazy_sweep);
    }
}


static void
ngx_bayeux_redis_ended(ngx_bayeux_redis_t *rd, redisReply *id,
    redisReply *user, redisReply *last, ngx_uint_t reason)
{
    ngx_bayeux_endpoint_t     *ep;
    ngx_bayeux_session_end_t   end;

    ep = rd->endpoint;

    if (ep->session_ended == NULL) {
        return;
    }

    ngx_memzero(&end, sizeof(ngx_bayeux_session_end_t));

    end.reason = reason;

    if (id == NULL) {
        end.client_id = rd->ended_id;

    } else if (id->type == REDIS_REPLY_STRING) {
        end.client_id.data = (u_char *) id->str;
        end.client_id.len = id->len;
    }

    if (user->type == REDIS_REPLY_STRING) {
        end.user.data = (u_char *) user->str;
        end.user.len = user->len;
    }

    end.last = (last->type == REDIS_REPLY_INTEGER && last->integer == 1);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: session %V ended, reason %ui",
                   &end.client_id, reason);

    if (reason == NGX_BAYEUX_END_EXPIRED) {
        /* counted by the worker whose sweep took it: once */
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_ENDED_EXPIRED, 1);
    }

    ep->session_ended(ep, &end);
}


/* {-3, user, last, ol, od}: a session ended for its queue overflowed */

static void
ngx_bayeux_redis_overflowed(ngx_bayeux_redis_t *rd, ngx_str_t *id,
    redisReply *reply)
{
    long long  held;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: session %V ends: its queue overflowed", id);

    held = 0;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 3
        && reply->element[3]->type == REDIS_REPLY_INTEGER)
    {
        held = reply->element[3]->integer;
    }

    if (held && reply->elements > 4
        && reply->element[4]->type == REDIS_REPLY_INTEGER)
    {
        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_DROPPED_QUEUE,
                        reply->element[4]->integer);
    }

    if (held == 1) {
        /* a held session let go after its channel's log was trimmed */

        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_QUEUE_OVERFLOWS, 1);

        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "bayeux: a held session missed messages that the "
                      "log of its channel no longer had (bayeux_max_queue "
                      "%ui), the session ends",
                      rd->endpoint->conf->max_queue);

    } else if (held == 2) {
        /* it overflowed as it was let go, which no publish saw */

        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_QUEUE_OVERFLOWS, 1);

        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "bayeux: queue of a session is full "
                      "(bayeux_max_queue %ui, bayeux_max_queue_size %uz), "
                      "the session ends",
                      rd->endpoint->conf->max_queue,
                      rd->endpoint->conf->max_queue_size);
    }

    if (held) {
        /* as a publish names the sessions it overflows */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "bayeux: full queue: session %V", id);
    }

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 2
        && rd->endpoint->session_ended)
    {
        rd->ended_id = *id;
        ngx_bayeux_redis_ended(rd, NULL, reply->element[1],
                               reply->element[2], NGX_BAYEUX_END_OVERFLOW);
    }
}


/* {-4, user, last}: a session ended for it was inactive */

static void
ngx_bayeux_redis_inactive(ngx_bayeux_redis_t *rd, ngx_str_t *id,
    redisReply *reply)
{
    ngx_bayeux_endpoint_t  *ep;

    ep = rd->endpoint;

    /* a clientId is a credential: named at debug level only */
    ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                  "bayeux: a session was inactive for bayeux_max_inactivity "
                  "(%M ms), the session ends", ep->conf->max_inactivity);
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux: inactive: session %V", id);

    /* counted by the worker whose connect found it: once */
    ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_ENDED_INACTIVE, 1);

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 2
        && ep->session_ended)
    {
        rd->ended_id = *id;
        ngx_bayeux_redis_ended(rd, NULL, reply->element[1],
                               reply->element[2], NGX_BAYEUX_END_INACTIVE);
    }
}


/*
 * bayeux_max_inactivity: what of the operation is activity for the
 * script, "act": its session's (a message of the client's, which the
 * protocol tells), its receivers' (what the server sends them counts in
 * client_server mode)
 */

static ngx_str_t *
ngx_bayeux_redis_act(ngx_bayeux_op_t *op, ngx_uint_t receivers)
{
    ngx_uint_t              i;
    ngx_bayeux_loc_conf_t  *conf;

    conf = op->endpoint->conf;
    i = 0;

    if (conf->max_inactivity) {

        if (op->active && op->client_id.len) {
            i |= 1;
        }

        if (receivers
            && conf->activity == NGX_BAYEUX_ACTIVITY_CLIENT_SERVER)
        {
            i |= 2;
        }
    }

    return &ngx_bayeux_redis_acts[i];
}


static ngx_int_t
ngx_bayeux_redis_connect_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    redisReply       *r;
    ngx_bayeux_op_t  *op;

    op = cmd->op;

    if (code == -1) {
        return NGX_DECLINED;
    }

    if (code == -3) {
        /* the session's queue overflowed: the script ended it */
        ngx_bayeux_redis_overflowed(cmd->redis, &op->client_id, reply);
        return NGX_BAYEUX_OVERFLOW;
    }

    if (code == -4) {
        /* bayeux_max_inactivity: the script ended it, it is unknown now */
        ngx_bayeux_redis_inactive(cmd->redis, &op->client_id, reply);
        return NGX_DECLINED;
    }

    if (code == 1 && cmd->park) {
        return NGX_AGAIN;
    }

    if (code == 2 && cmd->park) {
        /* answered, its session held here until the next connect */
        cmd->park->answered = 1;
    }

    r = (reply->type == REDIS_REPLY_ARRAY && reply->elements > 1)
        ? reply->element[1] : NULL;

    if (ngx_bayeux_redis_messages(r, op->pool, &op->messages) != NGX_OK) {

        if (!ngx_bayeux_redis_kept(reply, op->waiter)) {
            /* taken from the queue, they must not be lost */
            ngx_bayeux_redis_put_back(cmd->redis, op->client_id.data, r);
        }

        return NGX_ERROR;
    }

    ngx_bayeux_redis_kept(reply, op->waiter);

    if (code == 2 && cmd->park && op->waiter->ack != NGX_BAYEUX_NO_ACK
        && op->messages && op->messages->nelts)
    {
        /*
         * the batch is kept in Redis until a connect acknowledges it: a
         * connect that does not is let go from the number the reply
         * names, whether or not the hold's notification came yet
         */
        cmd->park->unacked = 1;
        cmd->park->batch = op->waiter->batch;
        cmd->park->acked = ngx_bayeux_redis_batch_from(reply,
                                                       cmd->park->cursor);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_subscribe_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    if (code == -2) {
        /* the session would have too many subscriptions */
        return NGX_BAYEUX_LIMIT;
    }

    return ngx_bayeux_redis_session_result(cmd, reply, code);
}


static ngx_int_t
ngx_bayeux_redis_publish_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    ngx_uint_t           i;
    redisReply          *r;
    ngx_bayeux_redis_t  *rd;

    rd = cmd->redis;

    if (code == -1) {
        return NGX_DECLINED;
    }

    cmd->op->count = (code > 0) ? (ngx_uint_t) code : 0;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return NGX_OK;
    }

    r = reply->element[1];

    ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_QUEUE_OVERFLOWS, r->elements);

    if (reply->elements > 2
        && reply->element[2]->type == REDIS_REPLY_INTEGER)
    {
        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_DROPPED_QUEUE,
                        reply->element[2]->integer);
    }

    if (reply->elements > 3
        && reply->element[3]->type == REDIS_REPLY_INTEGER)
    {
        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_QUEUED,
                        reply->element[3]->integer);
    }

    /* a clientId is a credential: named at debug level only */

    for (i = 0; i < r->elements; i++) {
        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "bayeux: queue of a session is full "
                      "(bayeux_max_queue %ui, bayeux_max_queue_size %uz), "
                      "the session ends",
                      rd->endpoint->conf->max_queue,
                      rd->endpoint->conf->max_queue_size);
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "bayeux: full queue: session %*s",
                       r->element[i]->len, r->element[i]->str);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_session_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    /* -1: no such session (or not of this browser) */
    return (code == -1) ? NGX_DECLINED : NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_unsubscribe_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 1) {
        ngx_bayeux_redis_copies(cmd->redis, reply->element[1]);
    }

    return ngx_bayeux_redis_session_result(cmd, reply, code);
}


static void
ngx_bayeux_redis_unpark_done(ngx_bayeux_redis_cmd_t *cmd, redisReply *reply)
{
    ngx_bayeux_redis_copies(cmd->redis, reply);
}


/*
 * A script that answers each of "n" parks or connects (a batch) may add
 * the copies it queued for the sessions it let go; 1 if "reply" has the
 * "n" replies.
 */

static ngx_uint_t
ngx_bayeux_redis_replies(ngx_bayeux_redis_t *rd, redisReply *reply,
    ngx_uint_t n)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return 0;
    }

    if (reply->elements == n + 1) {
        ngx_bayeux_redis_copies(rd, reply->element[n]);
        return 1;
    }

    return (reply->elements == n);
}


/*
 * The copies of messages a script queued one by one for sessions it let
 * go (a takeover, a first connect): the work per subscriber that holding
 * them spares Redis, counted with those a publish queues.
 */

static void
ngx_bayeux_redis_copies(ngx_bayeux_redis_t *rd, redisReply *copies)
{
    if (copies && copies->type == REDIS_REPLY_INTEGER
        && copies->integer > 0)
    {
        ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_QUEUED,
                        copies->integer);
    }
}


static ngx_int_t
ngx_bayeux_redis_touch_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    redisReply       *g;
    ngx_bayeux_op_t  *op;

    if (code == -1) {
        return NGX_DECLINED;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return NGX_ERROR;
    }

    op = cmd->op;
    g = reply->element[1];

    op->grants.len = g->len;
    op->grants.data = ngx_pnalloc(op->pool, g->len);
    if (op->grants.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(op->grants.data, g->str, g->len);

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_count_result(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_int_t code)
{
    cmd->op->count = (code > 0) ? (ngx_uint_t) code : 0;

    return NGX_OK;
}


static void
ngx_bayeux_redis_deliver(ngx_bayeux_op_t *op)
{
    ngx_bayeux_redis_target_op(op, NGX_BAYEUX_REDIS_DELIVER);
}


static void
ngx_bayeux_redis_count(ngx_bayeux_op_t *op)
{
    ngx_bayeux_redis_target_op(op, NGX_BAYEUX_REDIS_COUNT);
}


/* an operation on a user's sessions, or on one session or channel */

static void
ngx_bayeux_redis_target_op(ngx_bayeux_op_t *op, ngx_uint_t kind)
{
    ngx_str_t                  *key;
    ngx_bayeux_redis_shards_t  *shards = op->endpoint->data;

    if (op->user.len) {
        key = &op->user;

    } else if (kind == NGX_BAYEUX_REDIS_DELIVER) {
        key = &op->client_id;

    } else if (shards->n > 1) {
        /* a channel has subscribers in every shard */
        ngx_bayeux_redis_fanout(op, shards->n, shards->n,
                                ngx_bayeux_redis_count_shard, shards);
        return;

    } else {
        key = &op->channel;
    }

    ngx_bayeux_redis_target_on(
        &shards->shard[ngx_bayeux_redis_shard_of(key, shards->n)], op, kind);
}


static void
ngx_bayeux_redis_count_shard(ngx_bayeux_op_t *op, ngx_uint_t shard,
    void *data)
{
    ngx_bayeux_redis_shards_t  *shards = data;

    ngx_bayeux_redis_target_on(&shards->shard[shard], op,
                               NGX_BAYEUX_REDIS_COUNT);
}


static void
ngx_bayeux_redis_target_on(ngx_bayeux_redis_t *rd, ngx_bayeux_op_t *op,
    ngx_uint_t kind)
{
    size_t                   size;
    ngx_str_t               *target, *act;
    ngx_uint_t               deliver;
    ngx_bayeux_redis_cmd_t  *cmd;

    deliver = (kind == NGX_BAYEUX_REDIS_DELIVER);

    if (op->user.len) {
        target = &op->user;

    } else if (deliver) {
        target = &op->client_id;

        if (!ngx_bayeux_redis_valid_id(target)) {
            op->rc = NGX_DECLINED;
            op->handler(op);
            return;
        }

    } else {
        target = &op->channel;
    }

    size = 1 + target->len;
    act = ngx_bayeux_redis_act(op, 1);

    if (deliver) {
        size += rd->max_queue.len + op->message.len + rd->lazy.len
                + act->len;
    }

    cmd = ngx_bayeux_redis_cmd_create(rd, kind, 0, size);
    if (cmd == NULL) {
        op->rc = NGX_ERROR;
        op->handler(op);
        return;
    }

    ngx_bayeux_redis_cmd_arg(cmd, (u_char *) (op->user.len ? "u" : "c"), 1);
    ngx_bayeux_redis_cmd_arg(cmd, target->data, target->len);

    if (deliver) {
        ngx_bayeux_redis_cmd_arg(cmd, rd->max_queue.data, rd->max_queue.len);
        ngx_bayeux_redis_cmd_arg(cmd, op->message.data, op->message.len);
        ngx_bayeux_redis_cmd_arg(cmd, rd->lazy.data,
                                 op->lazy ? rd->lazy.len : 0);
        ngx_bayeux_redis_cmd_arg(cmd, act->data, act->len);
    }

    cmd->op = op;

    ngx_bayeux_redis_submit(cmd);
}


static ngx_uint_t
ngx_bayeux_redis_valid_id(ngx_str_t *id)
{
    ngx_uint_t  i;

    /* ids go into key names and notifications: only ours get there */

    if (id->len != NGX_BAYEUX_CLIENT_ID_LEN) {
        return 0;
    }

    for (i = 0; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'a' && id->data[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


/* parked connects */

static ngx_bayeux_redis_park_t *
ngx_bayeux_redis_park_find(ngx_bayeux_redis_t *rd, ngx_rbtree_key_t key)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = rd->parks.root;
    sentinel = rd->parks.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        return (ngx_bayeux_redis_park_t *) node;
    }

    return NULL;
}


static ngx_bayeux_redis_park_t *
ngx_bayeux_redis_first_parked(ngx_bayeux_redis_t *rd)
{
    ngx_rbtree_node_t        *node;
    ngx_bayeux_redis_park_t  *park;

    if (rd->parks.root == rd->parks.sentinel) {
        return NULL;
    }

    for (node = ngx_rbtree_min(rd->parks.root, rd->parks.sentinel);
         node;
         node = ngx_rbtree_next(&rd->parks, node))
    {
        park = (ngx_bayeux_redis_park_t *) node;

        if (park->state == NGX_BAYEUX_PARK_PARKED) {
            return park;
        }
    }

    return NULL;
}


/*
 * Takes the queue of a parked session, if the connect is still the one
 * Redis knows: "w" (woken) leaves it parked if the queue is empty, "r"
 * (released) ends it in any case.
 */

static void
ngx_bayeux_redis_take(ngx_bayeux_redis_park_t *park, char *mode)
{
    ngx_bayeux_redis_take_batch(park->redis, &park, 1, mode);
}


/* several sessions in one script call: each is answered as if alone */

static void
ngx_bayeux_redis_take_batch(ngx_bayeux_redis_t *rd,
    ngx_bayeux_redis_park_t **parks, ngx_uint_t n, char *mode)
{
    u_char                    cursor[NGX_INT64_LEN];
    size_t                    size;
    ngx_uint_t                i;
    ngx_bayeux_redis_cmd_t   *cmd;
    ngx_bayeux_redis_park_t  *park;

    size = rd->channel.len + 1 + rd->max_queue.len
           + (n + 1) * sizeof(ngx_bayeux_redis_park_t *);

    for (i = 0; i < n; i++) {
        size += NGX_BAYEUX_CLIENT_ID_LEN + parks[i]->token.len
                + NGX_INT64_LEN;
    }

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_TAKE, 3 * n, size);
    if (cmd == NULL) {
        for (i = 0; i < n; i++) {
            parks[i]->state = NGX_BAYEUX_PARK_PARKED;
            ngx_bayeux_redis_answer(parks[i], NGX_BAYEUX_WAKE_ERROR, NULL);
        }

        return;
    }

    /* the parks first, then the arguments' text */

    cmd->parks = (ngx_bayeux_redis_park_t **)
                     ngx_align_ptr(cmd->last, sizeof(void *));
    cmd->last = (u_char *) (cmd->parks + n);
    cmd->n = n;

    ngx_bayeux_redis_cmd_arg(cmd, rd->channel.data, rd->channel.len);
    ngx_bayeux_redis_cmd_arg(cmd, (u_char *) mode, 1);
    ngx_bayeux_redis_cmd_arg(cmd, rd->max_queue.data, rd->max_queue.len);

    for (i = 0; i < n; i++) {
        park = parks[i];

        ngx_bayeux_redis_cmd_arg(cmd, park->id, NGX_BAYEUX_CLIENT_ID_LEN);
        ngx_bayeux_redis_cmd_arg(cmd, park->token.data, park->token.len);
        ngx_bayeux_redis_cmd_arg(cmd, cursor,
                                 ngx_bayeux_redis_cursor(park, cursor));

        park->state = NGX_BAYEUX_PARK_TAKING;
        cmd->parks[i] = park;
    }

    ngx_bayeux_redis_submit(cmd);
}


static void
ngx_bayeux_redis_take_done(ngx_bayeux_redis_cmd_t *cmd, redisReply *reply)
{
    ngx_uint_t   i, each;
    redisReply  *r;

    each = ngx_bayeux_redis_replies(cmd->redis, reply, cmd->n);

    /*
     * A park in TAKING is freed by nobody but its own result, so the
     * later ones are still there while the earlier ones are answered.
     */

    for (i = 0; i < cmd->n; i++) {
        r = each ? reply->element[i] : NULL;

        ngx_bayeux_redis_take_result(cmd->parks[i], r);
    }
}


static void
ngx_bayeux_redis_take_result(ngx_bayeux_redis_park_t *park, redisReply *r)
{
    ngx_str_t  id;

    park->state = NGX_BAYEUX_PARK_PARKED;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY
        || r->elements == 0
        || r->element[0]->type != REDIS_REPLY_INTEGER)
    {
        ngx_bayeux_redis_answer(park, NGX_BAYEUX_WAKE_ERROR, NULL);
        return;
    }

    switch (r->element[0]->integer) {

    case -2:
        ngx_bayeux_redis_answer(park, NGX_BAYEUX_WAKE_DISCONNECTED, NULL);
        return;

    case -1:
        ngx_bayeux_redis_answer(park, NGX_BAYEUX_WAKE_SUPERSEDED, NULL);
        return;

    case -3:
        id.data = park->id;
        id.len = NGX_BAYEUX_CLIENT_ID_LEN;
        ngx_bayeux_redis_overflowed(park->redis, &id, r);
        ngx_bayeux_redis_answer(park, NGX_BAYEUX_WAKE_OVERFLOW, NULL);
        return;

    case 1:
        /* nothing to take: still parked */
        ngx_bayeux_redis_settle(park);
        return;

    default:
        park->kept = ngx_bayeux_redis_kept(r, park->waiter);
        ngx_bayeux_redis_answer(park, NGX_BAYEUX_WAKE_MESSAGES,
                                r->elements > 1 ? r->element[1] : NULL);
    }
}


/*
 * A reply {2, messages, batch, from} holds the session of a connect that
 * acknowledges: its batch is the messages the logs hold after "from"
 * (the script's "ha"), or, if "from" is where the session is held from,
 * the head of its queue.  Either way a connect that does not acknowledge
 * it lets the session go from "from".
 */

static uint64_t
ngx_bayeux_redis_batch_from(redisReply *r, uint64_t cursor)
{
    off_t        from;
    redisReply  *e;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 4) {
        return cursor;
    }

    e = r->element[3];

    if (e->type != REDIS_REPLY_STRING) {
        return cursor;
    }

    from = ngx_atoof((u_char *) e->str, e->len);

    return from == NGX_ERROR ? cursor : (uint64_t) from;
}


/*
 * A reply {0, messages, batch} gives to a connect that acknowledges: the
 * script keeps the messages until a later connect acknowledges them, the
 * waiter (if any) learns the batch.
 */

static ngx_uint_t
ngx_bayeux_redis_kept(redisReply *r, ngx_bayeux_waiter_t *w)
{
    redisReply  *batch;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        return 0;
    }

    batch = r->element[2];

    if (w && batch->type == REDIS_REPLY_INTEGER && batch->integer > 0) {
        w->batch = (ngx_uint_t) batch->integer;
    }

    return 1;
}


/*
 * A connect parked again once its command is answered: what came for it
 * meanwhile is done now, the client going away first, then a release,
 * then a notification.
 */

static void
ngx_bayeux_redis_settle(ngx_bayeux_redis_park_t *park)
{
    if (park->waiter == NULL) {
        ngx_bayeux_redis_unpark(park);

    } else if (park->npending) {
        ngx_bayeux_redis_confirm(park);

    } else if (park->released) {
        ngx_bayeux_redis_take(park, "r");

    } else if (park->notified) {
        park->notified = 0;
        ngx_bayeux_redis_take(park, "w");
    }
}


static void
ngx_bayeux_redis_answer(ngx_bayeux_redis_park_t *park,
    ngx_bayeux_wake_e reason, redisReply *list)
{
    ngx_bayeux_redis_t   *rd;
    ngx_bayeux_waiter_t  *w;

    rd = park->redis;
    w = park->waiter;

    if (w == NULL) {
        /* the client went away: what was taken for it goes back */

        ngx_rbtree_delete(&rd->parks, &park->node);

        if (list && list->type == REDIS_REPLY_ARRAY && list->elements
            && !park->kept)
        {
            ngx_bayeux_redis_put_back(rd, park->id, list);
        }

        ngx_bayeux_redis_park_free(park);
        return;
    }

    w->messages = NULL;

    if (reason == NGX_BAYEUX_WAKE_MESSAGES) {

        if (ngx_bayeux_redis_messages(list, w->pool, &w->messages)
            != NGX_OK)
        {
            if (!park->kept) {
                ngx_bayeux_redis_put_back(rd, park->id, list);
            }

            w->messages = NULL;
            reason = NGX_BAYEUX_WAKE_ERROR;

        } else if (w->messages->nelts == 0) {
            reason = NGX_BAYEUX_WAKE_TIMEOUT;
        }
    }

    ngx_bayeux_redis_answered(park, reason);
}


/* the connect of a park still in the tree is answered with w->messages */

static void
ngx_bayeux_redis_answered(ngx_bayeux_redis_park_t *park,
    ngx_bayeux_wake_e reason)
{
    ngx_bayeux_waiter_t  *w;

    w = park->waiter;

    ngx_rbtree_delete(&park->redis->parks, &park->node);
    w->engine_data = NULL;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, park->redis->log, 0,
                   "bayeux redis: session %*s answered",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, park->id);

    ngx_bayeux_redis_park_free(park);

    w->handler(w, reason);
}


/*
 * A parked connect given one message by the publish (the ack extension):
 * Redis keeps it as batch "batch" until acknowledged, so a failure here
 * loses nothing: the client's next connect is given it again.
 */

static void
ngx_bayeux_redis_answer_given(ngx_bayeux_redis_park_t *park,
    ngx_uint_t batch, ngx_str_t *message)
{
    ngx_bayeux_waiter_t  *w;

    w = park->waiter;

    if (ngx_bayeux_redis_one_message(w, message) != NGX_OK) {
        ngx_bayeux_redis_answered(park, NGX_BAYEUX_WAKE_ERROR);
        return;
    }

    w->batch = batch;

    ngx_bayeux_redis_answered(park, NGX_BAYEUX_WAKE_MESSAGES);
}


/* w->messages: a copy of "message", in the waiter's pool */

static ngx_int_t
ngx_bayeux_redis_one_message(ngx_bayeux_waiter_t *w, ngx_str_t *message)
{
    w->messages = ngx_array_create(w->pool, 1, sizeof(ngx_str_t));
    if (w->messages == NULL) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_redis_copy_message(w, message->data, message->len)
        != NGX_OK)
    {
        w->messages = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a copy of a message, in the waiter's pool, added to what it is given */

static ngx_int_t
ngx_bayeux_redis_copy_message(ngx_bayeux_waiter_t *w, u_char *data,
    size_t len)
{
    ngx_str_t  *m;

    m = ngx_array_push(w->messages);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->data = ngx_pnalloc(w->pool, len);
    if (m->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(m->data, data, len);
    m->len = len;

    return NGX_OK;
}


/*
 * the connect went away while parked, or a kept session is let go:
 * Redis forgets it
 */

static void
ngx_bayeux_redis_unpark(ngx_bayeux_redis_park_t *park)
{
    u_char                   cursor[NGX_INT64_LEN], missed[NGX_INT_T_LEN];
    size_t                   len;
    ngx_bayeux_redis_t      *rd;
    ngx_bayeux_redis_cmd_t  *cmd;

    rd = park->redis;

    ngx_rbtree_delete(&rd->parks, &park->node);

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_UNPARK, 0,
                                      NGX_BAYEUX_CLIENT_ID_LEN
                                      + rd->channel.len + park->token.len
                                      + NGX_INT64_LEN + rd->max_queue.len
                                      + 2 + NGX_INT_T_LEN);
    if (cmd) {
        ngx_bayeux_redis_cmd_arg(cmd, park->id, NGX_BAYEUX_CLIENT_ID_LEN);
        ngx_bayeux_redis_cmd_arg(cmd, rd->channel.data, rd->channel.len);
        ngx_bayeux_redis_cmd_arg(cmd, park->token.data, park->token.len);

        len = ngx_bayeux_redis_cursor(park, cursor);

        if (park->missed) {
            /* from the last message it saw, not the last acknowledged */
            len = ngx_sprintf(cursor, "%uL", park->cursor) - cursor;
        }

        ngx_bayeux_redis_cmd_arg(cmd, cursor, len);
        ngx_bayeux_redis_cmd_arg(cmd, rd->max_queue.data, rd->max_queue.len);
        ngx_bayeux_redis_cmd_arg(cmd, (u_char *)
                                 (park->state == NGX_BAYEUX_PARK_KEPT
                                  ? "0" : "1"), 1);
        ngx_bayeux_redis_cmd_arg(cmd, missed,
                                 ngx_sprintf(missed, "%ui", park->missed)
                                 - missed);
        ngx_bayeux_redis_cmd_arg(cmd, (u_char *)
                                 (park->unacked ? "1" : "0"), 1);

        ngx_bayeux_redis_submit(cmd);
    }

    ngx_bayeux_redis_park_free(park);
}


static void
ngx_bayeux_redis_put_back(ngx_bayeux_redis_t *rd, u_char *id,
    redisReply *list)
{
    size_t                   size;
    ngx_uint_t               i;
    ngx_bayeux_redis_cmd_t  *cmd;

    if (list == NULL || list->type != REDIS_REPLY_ARRAY
        || list->elements == 0)
    {
        return;
    }

    size = NGX_BAYEUX_CLIENT_ID_LEN + rd->max_queue.len;

    for (i = 0; i < list->elements; i++) {
        size += list->element[i]->len;
    }

    cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_PUT_BACK,
                                      list->elements, size);
    if (cmd == NULL) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "bayeux: %uz messages of a session lost",
                      list->elements);
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "bayeux: messages lost: session %*s",
                       (size_t) NGX_BAYEUX_CLIENT_ID_LEN, id);
        return;
    }

    ngx_bayeux_redis_cmd_arg(cmd, id, NGX_BAYEUX_CLIENT_ID_LEN);
    ngx_bayeux_redis_cmd_arg(cmd, rd->max_queue.data, rd->max_queue.len);

    for (i = 0; i < list->elements; i++) {
        ngx_bayeux_redis_cmd_arg(cmd, (u_char *) list->element[i]->str,
                                 list->element[i]->len);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "bayeux redis: session %*s: messages put back",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, id);

    ngx_bayeux_redis_submit(cmd);
}


/*
 * The sessions of parked connects do not expire, nor do those kept
 * between connects whose client came within the last period; the others'
 * lifetime runs out, and they are let go (ngx_bayeux_redis_let_held_go()).
 */

static void
ngx_bayeux_redis_refresh(ngx_bayeux_redis_t *rd)
{
    u_char                    cursor[NGX_INT64_LEN];
    ngx_uint_t                i, n;
    ngx_rbtree_node_t        *node, *start;
    ngx_bayeux_redis_cmd_t   *cmd;
    ngx_bayeux_redis_park_t  *park;

    if (rd->parks.root == rd->parks.sentinel) {
        return;
    }

    node = ngx_rbtree_min(rd->parks.root, rd->parks.sentinel);

    while (node) {
        start = node;

        for (n = 0; node && n < NGX_BAYEUX_REDIS_REFRESH_MAX; ) {
            park = (ngx_bayeux_redis_park_t *) node;

            if (ngx_bayeux_redis_renewed(park)) {
                n++;
            }

            node = ngx_rbtree_next(&rd->parks, node);
        }

        if (n == 0) {
            return;
        }

        cmd = ngx_bayeux_redis_cmd_create(rd, NGX_BAYEUX_REDIS_REFRESH,
                                          3 * n,
                                          rd->channel.len
                                          + n * (NGX_BAYEUX_CLIENT_ID_LEN
                                                 + NGX_INT_T_LEN
                                                 + NGX_INT64_LEN));
        if (cmd == NULL) {
            return;
        }

        ngx_bayeux_redis_cmd_arg(cmd, rd->channel.data, rd->channel.len);

        for (i = 0; i < n; /* void */) {
            park = (ngx_bayeux_redis_park_t *) start;
            start = ngx_rbtree_next(&rd->parks, start);

            if (!ngx_bayeux_redis_renewed(park)) {
                continue;
            }

            ngx_bayeux_redis_cmd_arg(cmd, park->id, NGX_BAYEUX_CLIENT_ID_LEN);
            ngx_bayeux_redis_cmd_arg(cmd, park->token.data, park->token.len);

            /*
             * a held session's cursor: a worker that dies costs little (a
             * long-polling one's is written exactly, by "gv")
             */
            ngx_bayeux_redis_cmd_arg(cmd, cursor,
                                     (park->held && !park->polling)
                                     ? (size_t) (ngx_sprintf(cursor, "%uL",
                                                 ngx_bayeux_redis_given_up_to(
                                                     park))
                                                 - cursor)
                                     : 0);
            i++;
        }

        ngx_bayeux_redis_submit(cmd);
    }
}


/* commands */

/* nlist: the number of arguments after the kind's own, size: their bytes */

static ngx_bayeux_redis_cmd_t *
ngx_bayeux_redis_cmd_create(ngx_bayeux_redis_t *rd, ngx_uint_t kind,
    ngx_uint_t nlist, size_t size)
{
    u_char                   *p;
    ngx_uint_t                argc;
    ngx_bayeux_redis_cmd_t   *cmd;
    ngx_bayeux_redis_kind_t  *k;

    k = &ngx_bayeux_redis_kinds[kind];
    argc = rd->args + k->nargs + nlist;

    p = ngx_alloc(sizeof(ngx_bayeux_redis_cmd_t)
                  + argc * (sizeof(char *) + sizeof(size_t)) + size,
                  rd->log);
    if (p == NULL) {
        return NULL;
    }

    cmd = (ngx_bayeux_redis_cmd_t *) p;
    ngx_memzero(cmd, sizeof(ngx_bayeux_redis_cmd_t));

    p += sizeof(ngx_bayeux_redis_cmd_t);

    cmd->argv = (const char **) p;
    p += argc * sizeof(char *);

    cmd->argvlen = (size_t *) p;
    p += argc * sizeof(size_t);

    cmd->last = p;

    cmd->req.handler = ngx_bayeux_redis_cmd_reply;
    cmd->redis = rd;
    cmd->kind = kind;
    cmd->order = ++rd->order;

    cmd->argv[0] = "EVALSHA";
    cmd->argvlen[0] = 7;
    cmd->argv[1] = (const char *) ngx_bayeux_redis_sha;
    cmd->argvlen[1] = 40;
    cmd->argv[2] = rd->cluster ? "1" : "0";
    cmd->argvlen[2] = 1;

    argc = 3;

    if (rd->cluster) {
        cmd->argv[argc] = (const char *) rd->prefix.data;
        cmd->argvlen[argc++] = rd->prefix.len;
    }

    cmd->argv[argc] = (const char *) k->op.data;
    cmd->argvlen[argc++] = k->op.len;
    cmd->argv[argc] = (const char *) rd->prefix.data;
    cmd->argvlen[argc++] = rd->prefix.len;
    cmd->argv[argc] = (const char *) rd->ttl.data;
    cmd->argvlen[argc++] = rd->ttl.len;

    cmd->argc = argc;

    return cmd;
}


/* the arguments outlive the caller's memory: a command may be sent later */

static void
ngx_bayeux_redis_cmd_arg(ngx_bayeux_redis_cmd_t *cmd, u_char *data,
    size_t len)
{
    cmd->argv[cmd->argc] = (const char *) cmd->last;
    cmd->argvlen[cmd->argc] = len;
    cmd->argc++;

    if (len) {
        cmd->last = ngx_cpymem(cmd->last, data, len);
    }
}


static void
ngx_bayeux_redis_submit(ngx_bayeux_redis_cmd_t *cmd)
{
    ngx_bayeux_redis_t  *rd = cmd->redis;

    if (rd->nconnects && cmd->kind != NGX_BAYEUX_REDIS_CONNECT_BATCH) {
        ngx_bayeux_redis_flush_connects(rd);
    }

    if ((rd->probe || !ngx_queue_empty(&rd->asked))
        && ngx_bayeux_redis_kinds[cmd->kind].waits)
    {
        /* behind those that wait for the migration: Redis keeps order */
        cmd->asked_at = ngx_current_msec;
        ngx_queue_insert_tail(&rd->asked, &cmd->queue);
        return;
    }

    switch (rd->state) {

    case NGX_BAYEUX_REDIS_UP:

        if (ngx_bayeux_redis_cmd_send(cmd) == NGX_OK) {
            return;
        }

        break;

    case NGX_BAYEUX_REDIS_CONNECTING:

        /* the first requests of a worker wait for its connection */

        ngx_queue_insert_tail(&rd->waiting, &cmd->queue);
        return;

    default:
        break;
    }

    ngx_bayeux_redis_cmd_done(cmd, NULL);
}


static ngx_int_t
ngx_bayeux_redis_cmd_send(ngx_bayeux_redis_cmd_t *cmd)
{
    ngx_bayeux_redis_t  *rd = cmd->redis;

    if (rd->cluster) {
        /*
         * how the primary it goes to notifies: "<prefix>" or "<prefix>~";
         * and "!" after it on a node that imports the slot
         */
        cmd->argv[NGX_BAYEUX_REDIS_CLUSTER_KEY] =
                      (rd->asking && rd->sharded)
                      ? (const char *) rd->importing_key
                      : (const char *) rd->prefix.data;
        cmd->argvlen[NGX_BAYEUX_REDIS_CLUSTER_KEY] = rd->prefix.len
                                                     + !rd->sharded
                                                     + rd->asking;
    }

    if (rd->asking && ngx_bayeux_redis_asking(&rd->cmd) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_redis_send(&rd->cmd, &cmd->req, cmd->argc, cmd->argv,
                              cmd->argvlen)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmd->sent = ngx_current_msec;
    ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_IN_FLIGHT, 1);

    return NGX_OK;
}


/*
 * The connects queued in this event loop iteration go in script calls of
 * up to NGX_BAYEUX_REDIS_CONNECT_MAX, in the order they came.
 */

static void
ngx_bayeux_redis_flush_handler(ngx_event_t *ev)
{
    ngx_bayeux_redis_flush_connects(ev->data);
}


/*
 * Sends the connects queued so far, in batches.  Also called before any
 * other command is sent, so that Redis applies commands in the order
 * they were made (a websocket's connect, then its disconnect).
 */

static void
ngx_bayeux_redis_flush_connects(ngx_bayeux_redis_t *rd)
{
    size_t                   size;
    ngx_int_t                k;
    ngx_uint_t               i, n;
    ngx_queue_t             *q;
    ngx_bayeux_redis_cmd_t   *cmd, *batch;
    ngx_bayeux_redis_kind_t  *connect;

    connect = &ngx_bayeux_redis_kinds[NGX_BAYEUX_REDIS_CONNECT];

    while (rd->nconnects) {
        n = ngx_min(rd->nconnects, NGX_BAYEUX_REDIS_CONNECT_MAX);

        size = rd->channel.len + rd->max_queue.len;
        q = ngx_queue_head(&rd->connects);

        for (i = 0; i < n; i++) {
            cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);

            for (k = rd->args; k < cmd->argc; k++) {
                size += cmd->argvlen[k];
            }

            q = ngx_queue_next(q);
        }

        batch = ngx_bayeux_redis_cmd_create(rd,
                                            NGX_BAYEUX_REDIS_CONNECT_BATCH,
                                            n * connect->nargs, size);

        if (batch) {
            ngx_queue_init(&batch->members);
            batch->n = n;
            ngx_bayeux_redis_cmd_arg(batch, rd->channel.data,
                                     rd->channel.len);
            ngx_bayeux_redis_cmd_arg(batch, rd->max_queue.data,
                                     rd->max_queue.len);
        }

        for (i = 0; i < n; i++) {
            q = ngx_queue_head(&rd->connects);
            ngx_queue_remove(q);
            rd->nconnects--;

            cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);

            if (batch == NULL) {
                ngx_bayeux_redis_cmd_done(cmd, NULL);
                continue;
            }

            ngx_queue_insert_tail(&batch->members, q);

            for (k = rd->args; k < cmd->argc; k++) {
                ngx_bayeux_redis_cmd_arg(batch, (u_char *) cmd->argv[k],
                                         cmd->argvlen[k]);
            }
        }

        if (batch) {
            ngx_bayeux_redis_submit(batch);
        }
    }
}


static void
ngx_bayeux_redis_connects_done(ngx_bayeux_redis_cmd_t *batch,
    redisReply *reply)
{
    ngx_uint_t               i, each;
    redisReply              *r;
    ngx_queue_t             *q;
    ngx_bayeux_redis_cmd_t  *cmd;

    each = ngx_bayeux_redis_replies(batch->redis, reply, batch->n);

    for (i = 0; !ngx_queue_empty(&batch->members); i++) {
        q = ngx_queue_head(&batch->members);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);

        /* NULL, an error or a malformed reply fails each connect alike */

        r = each ? reply->element[i] : reply;

        ngx_bayeux_redis_op_done(cmd, r);
        ngx_free(cmd);
    }
}


static void
ngx_bayeux_redis_cmd_free(ngx_bayeux_redis_cmd_t *cmd)
{
    ngx_queue_t             *q;
    ngx_bayeux_redis_cmd_t  *member;

    if (cmd->kind == NGX_BAYEUX_REDIS_CONNECT_BATCH) {
        while (!ngx_queue_empty(&cmd->members)) {
            q = ngx_queue_head(&cmd->members);
            ngx_queue_remove(q);
            member = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
            ngx_free(member);
        }
    }

    ngx_free(cmd);
}


static void
ngx_bayeux_redis_cmd_reply(ngx_bayeux_redis_conn_t *rc, redisReply *reply,
    ngx_bayeux_redis_req_t *req)
{
    ngx_bayeux_redis_cmd_t  *cmd = (ngx_bayeux_redis_cmd_t *) req;

    ngx_uint_t           probe, redirected, moved, asked;
    ngx_bayeux_redis_t  *rd;

    rd = cmd->redis;

    probe = (cmd == rd->probe);

    if (probe) {
        rd->probe = NULL;
    }

    ngx_bayeux_stat(rd->endpoint, NGX_BAYEUX_STAT_REDIS_IN_FLIGHT, -1);

    if (reply) {
        ngx_bayeux_stat_latency(rd->endpoint, ngx_current_msec - cmd->sent);
    }

    if (reply && reply->type == REDIS_REPLY_ERROR && !cmd->eval
        && reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && !rd->exiting)
    {
        /* the script cache was flushed: the text loads it again */

        cmd->eval = 1;
        cmd->argv[0] = "EVAL";
        cmd->argvlen[0] = 4;
        cmd->argv[1] = ngx_bayeux_redis_script;
        cmd->argvlen[1] = sizeof(ngx_bayeux_redis_script) - 1;

        if (ngx_bayeux_redis_cmd_send(cmd) == NGX_OK) {

            if (probe) {
                rd->probe = cmd;
            }

            return;
        }

        reply = NULL;
    }

    redirected = (rd->cluster && reply && reply->type == REDIS_REPLY_ERROR);

    moved = (redirected && reply->len >= 6
             && ngx_strncmp(reply->str, "MOVED ", 6) == 0);

    asked = (redirected && reply->len >= 4
             && ngx_strncmp(reply->str, "ASK ", 4) == 0);

    if (moved) {
        /* the slot moved, or a failover: the cluster is asked again */
        ngx_bayeux_redis_moved(rd);

    } else if (asked) {
        ngx_bayeux_redis_ask_noted(rd, reply);
    }

    if ((moved || asked)
        && ngx_bayeux_redis_wait_migration(cmd, reply, probe))
    {
        return;
    }

    if (rd->sentinels && reply && reply->type == REDIS_REPLY_ERROR
        && ngx_strnstr((u_char *) reply->str, "READONLY", reply->len))
    {
        /* the primary became a replica: the sentinels know the new one */
        ngx_bayeux_redis_close(rc, "the master became a replica");
    }

    if (probe && reply) {
        /* (what waited behind it is older than what its result makes) */
        ngx_bayeux_redis_migrated(rd);
    }

    ngx_bayeux_redis_cmd_done(cmd, reply);
}


/*
 * A script answered ASK (its slot migrates) or MOVED (it moved) was not
 * run: Redis checks the key it declares before it runs any.  A command
 * that may wait does, for bayeux_redis_command_timeout at most, instead
 * of failing.  A script cannot follow ASK to the importing node while
 * the keys it reads there without declaring them may not have moved yet
 * (until then: ngx_bayeux_redis_count_keys_reply()).
 */

static ngx_uint_t
ngx_bayeux_redis_wait_migration(ngx_bayeux_redis_cmd_t *cmd,
    redisReply *reply, ngx_uint_t probe)
{
    ngx_bayeux_redis_t  *rd = cmd->redis;

    if (rd->exiting || !ngx_bayeux_redis_kinds[cmd->kind].waits) {
        return 0;
    }

    if (!probe) {
        cmd->asked_at = ngx_current_msec;
    }

    ngx_bayeux_redis_ask_insert(rd, cmd);

    if (!rd->migrating) {
        rd->migrating = 1;

        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "bayeux: redis %V of location \"%V\" answered "
                      "\"%*s\": requests wait until a primary serves the "
                      "slot, bayeux_redis_command_timeout at most",
                      &rd->addr, &rd->endpoint->name,
                      ngx_min(reply->len, 64), reply->str);
    }

    if (!rd->ask_retry.timer_set) {
        ngx_add_timer(&rd->ask_retry, NGX_BAYEUX_REDIS_ASK_RETRY);
    }

    return 1;
}


/*
 * In the order the commands were made, whatever order their answers
 * came in: a probe is older than those made while it was in flight, and
 * a command sent before it may be answered after its first ASK.
 */

static void
ngx_bayeux_redis_ask_insert(ngx_bayeux_redis_t *rd,
    ngx_bayeux_redis_cmd_t *cmd)
{
    ngx_queue_t             *q;
    ngx_bayeux_redis_cmd_t  *c;

    for (q = ngx_queue_last(&rd->asked);
         q != ngx_queue_sentinel(&rd->asked);
         q = ngx_queue_prev(q))
    {
        c = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);

        if (c->order < cmd->order) {
            break;
        }
    }

    ngx_queue_insert_after(q, &cmd->queue);
}


static void
ngx_bayeux_redis_moved(ngx_bayeux_redis_t *rd)
{
    const char  *argv[1];
    size_t       argvlen[1];

    if (rd->moved) {
        return;
    }

    rd->moved = 1;

    argv[0] = "PING";
    argvlen[0] = 4;

    if (ngx_bayeux_redis_send(&rd->cmd, &rd->moved_req, 1, argv, argvlen)
        != NGX_OK)
    {
        rd->moved = 0;
        ngx_bayeux_redis_close(&rd->cmd, "the slot moved to another node");
    }
}


static void
ngx_bayeux_redis_moved_reply(ngx_bayeux_redis_conn_t *rc, redisReply *reply,
    ngx_bayeux_redis_req_t *req)
{
    ngx_bayeux_redis_t  *rd = rc->data;

    rd->moved = 0;
    ngx_bayeux_redis_close(rc, rd->following
                               ? "the slot's keys moved: ASK followed"
                               : "the slot moved to another node");
}


static void
ngx_bayeux_redis_ask_retry_handler(ngx_event_t *ev)
{
    ngx_uint_t               failed;
    ngx_queue_t             *q;
    ngx_bayeux_redis_t      *rd = ev->data;
    ngx_bayeux_redis_cmd_t  *cmd;

    /*
     * those that waited too long fail, as in an outage; said first, so
     * that the log has it before a client has the answer
     */

    failed = 0;

    for (q = ngx_queue_head(&rd->asked);
         q != ngx_queue_sentinel(&rd->asked);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);

        if ((ngx_msec_int_t) (ngx_current_msec - cmd->asked_at)
            < (ngx_msec_int_t) rd->cmd.command_timeout)
        {
            break;
        }

        failed++;
    }

    if (failed) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "bayeux: redis %V of location \"%V\": no primary "
                      "served the slot within bayeux_redis_command_timeout:"
                      " %ui requests that waited get "
                      "\"503::engine_unavailable\"",
                      &rd->addr, &rd->endpoint->name, failed);
    }

    while (failed--) {
        q = ngx_queue_head(&rd->asked);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
        ngx_bayeux_redis_cmd_done(cmd, NULL);
    }

    if (rd->state == NGX_BAYEUX_REDIS_UP && rd->probe == NULL && !rd->moved
        && !ngx_queue_empty(&rd->asked))
    {
        ngx_bayeux_redis_send_probe(rd);
    }

    if (rd->ask_node.len && !rd->counting && !rd->moved
        && !rd->asking_refused && rd->state == NGX_BAYEUX_REDIS_UP)
    {
        ngx_bayeux_redis_count_keys(rd);
    }

    if (rd->asking && !rd->owner_asked && rd->state == NGX_BAYEUX_REDIS_UP)
    {
        ngx_bayeux_redis_ask_owner(rd);
    }

    if (rd->probe || rd->counting || rd->ask_node.len || rd->following
        || rd->asking || !ngx_queue_empty(&rd->asked))
    {
        ngx_add_timer(ev, NGX_BAYEUX_REDIS_ASK_RETRY);
        return;
    }

    /* none waits now: the next ASK is said again */
    rd->migrating = 0;
}


static void
ngx_bayeux_redis_send_probe(ngx_bayeux_redis_t *rd)
{
    ngx_queue_t             *q;
    ngx_bayeux_redis_cmd_t  *cmd;

    q = ngx_queue_head(&rd->asked);
    ngx_queue_remove(q);
    cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);

    if (ngx_bayeux_redis_cmd_send(cmd) != NGX_OK) {
        ngx_bayeux_redis_cmd_done(cmd, NULL);
        return;
    }

    rd->probe = cmd;

    if (!rd->ask_retry.timer_set) {
        ngx_add_timer(&rd->ask_retry, NGX_BAYEUX_REDIS_ASK_RETRY);
    }
}


/* the node an ASK names, kept until the old primary holds no key */

static void
ngx_bayeux_redis_ask_noted(ngx_bayeux_redis_t *rd, redisReply *reply)
{
    u_char  *p, *last;

    /* "ASK <slot> <host>:<port>" */

    last = (u_char *) reply->str + reply->len;
    p = ngx_strlchr((u_char *) reply->str + 4, last, ' ');

    if (p == NULL || (size_t) (last - p - 1) > NGX_SOCKADDR_STRLEN) {
        return;
    }

    p++;
    rd->ask_node.len = last - p;
    rd->ask_node.data = rd->ask_node_data;
    ngx_memcpy(rd->ask_node_data, p, rd->ask_node.len);

    if (!rd->ask_retry.timer_set) {
        ngx_add_timer(&rd->ask_retry, NGX_BAYEUX_REDIS_ASK_RETRY);
    }
}


static void
ngx_bayeux_redis_count_keys(ngx_bayeux_redis_t *rd)
{
    u_char       slot[NGX_INT_T_LEN];
    const char  *argv[3];
    size_t       argvlen[3];

    argv[0] = "CLUSTER";
    argvlen[0] = 7;
    argv[1] = "COUNTKEYSINSLOT";
    argvlen[1] = 15;
    argv[2] = (const char *) slot;
    argvlen[2] = ngx_sprintf(slot, "%ui", rd->cluster->slot) - slot;

    if (ngx_bayeux_redis_send(&rd->cmd, &rd->count_req, 3, argv, argvlen)
        == NGX_OK)
    {
        rd->counting = 1;
    }
}


/*
 * None of the slot's keys is left on the old primary, and it creates
 * none while it migrates (it answers ASK to every script): a script that
 * runs on the new one finds every key it reads there, so the link moves
 * to it rather than waiting for the migration to be finished.  A refused
 * COUNTKEYSINSLOT (an ACL) leaves the requests waiting.
 */

static void
ngx_bayeux_redis_count_keys_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    char                *err;
    u_char              *colon, *last;
    ngx_int_t            port;
    ngx_bayeux_redis_t  *rd = rc->data;

    rd->counting = 0;

    if (reply == NULL || rd->exiting || rd->ask_node.len == 0
        || rd->state != NGX_BAYEUX_REDIS_UP || rd->moved)
    {
        return;
    }

    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 0) {

        if (rd->probe == NULL && ngx_queue_empty(&rd->asked)) {
            /* nothing waits: the next ASK asks again */
            rd->ask_node.len = 0;
        }

        return;
    }

    /* the last colon: an IPv6 address has others */

    last = rd->ask_node.data + rd->ask_node.len;

    for (colon = last - 1; colon > rd->ask_node.data; colon--) {
        if (*colon == ':') {
            break;
        }
    }

    port = (*colon == ':') ? ngx_atoi(colon + 1, last - colon - 1)
                           : NGX_ERROR;

    if (port != NGX_ERROR) {
        /* said first: the link's name becomes the new node's */

        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "bayeux: redis %V of location \"%V\": the slot's "
                      "keys have all moved to %V before it serves the slot:"
                      " requests follow ASK there",
                      &rd->addr, &rd->endpoint->name, &rd->ask_node);
    }

    err = (port == NGX_ERROR)
          ? "it gave no port"
          : ngx_bayeux_redis_ask_answer(&rd->cluster->ask, rd->ask_node.data,
                                        colon - rd->ask_node.data, port);

    if (err) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "bayeux: redis %V of location \"%V\": ASK named "
                      "\"%V\": %s",
                      &rd->addr, &rd->endpoint->name, &rd->ask_node, err);
        rd->ask_node.len = 0;
        return;
    }

    rd->following = 1;
    ngx_bayeux_redis_moved(rd);
}


/*
 * The next command runs on a node that imports the slot.  The request
 * is the engine's, not the command's: a command that fails to be sent
 * after it is freed before ASKING is answered.
 */

static ngx_int_t
ngx_bayeux_redis_asking(ngx_bayeux_redis_conn_t *rc)
{
    const char              *argv[1];
    size_t                   argvlen[1];
    ngx_queue_t             *q;
    ngx_bayeux_redis_t      *rd = rc->data;
    ngx_bayeux_redis_req_t  *req;

    if (ngx_queue_empty(&rd->asking_free)) {
        req = ngx_alloc(sizeof(ngx_bayeux_redis_req_t), rd->log);
        if (req == NULL) {
            return NGX_ERROR;
        }

    } else {
        q = ngx_queue_head(&rd->asking_free);
        ngx_queue_remove(q);
        req = ngx_queue_data(q, ngx_bayeux_redis_req_t, queue);
    }

    ngx_memzero(req, sizeof(ngx_bayeux_redis_req_t));
    req->handler = ngx_bayeux_redis_asking_reply;

    argv[0] = "ASKING";
    argvlen[0] = 6;

    if (ngx_bayeux_redis_send(rc, req, 1, argv, argvlen) != NGX_OK) {
        ngx_queue_insert_head(&rd->asking_free, &req->queue);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * An ACL may refuse ASKING: the command after it is answered MOVED, the
 * link moves back, and from then on requests wait for the migration.
 */

static void
ngx_bayeux_redis_asking_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    ngx_bayeux_redis_t  *rd = rc->data;

    ngx_queue_insert_head(&rd->asking_free, &req->queue);

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR
        || rd->asking_refused)
    {
        return;
    }

    rd->asking_refused = 1;

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "bayeux: redis %V of location \"%V\" refused ASKING "
                  "(%*s): requests wait for migrations instead of "
                  "following ASK",
                  &rd->addr, &rd->endpoint->name,
                  ngx_min(reply->len, 64), reply->str);
}


/*
 * Whether the node the link followed ASK to serves the slot now (the
 * migration is finished): a command without ASKING on a key of the slot
 * is answered there, not MOVED.
 */

static void
ngx_bayeux_redis_ask_owner(ngx_bayeux_redis_t *rd)
{
    const char  *argv[2];
    size_t       argvlen[2];

    argv[0] = "EXISTS";
    argvlen[0] = 6;
    argv[1] = (const char *) rd->prefix.data;
    argvlen[1] = rd->prefix.len;

    if (ngx_bayeux_redis_send(&rd->cmd, &rd->owner_req, 2, argv, argvlen)
        == NGX_OK)
    {
        rd->owner_asked = 1;
    }
}


static void
ngx_bayeux_redis_owner_reply(ngx_bayeux_redis_conn_t *rc, redisReply *reply,
    ngx_bayeux_redis_req_t *req)
{
    ngx_bayeux_redis_t  *rd = rc->data;

    rd->owner_asked = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || !rd->asking) {
        return;
    }

    rd->asking = 0;

    ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                  "bayeux: redis %V of location \"%V\" serves the slot: "
                  "requests no longer follow ASK",
                  &rd->addr, &rd->endpoint->name);
}


/* the probe ran: the slot is served here, the others are sent in order */

static void
ngx_bayeux_redis_migrated(ngx_bayeux_redis_t *rd)
{
    ngx_uint_t               n;
    ngx_queue_t              waited, *q;
    ngx_bayeux_redis_cmd_t  *cmd;

    if (rd->exiting || !rd->migrating) {
        return;
    }

    rd->migrating = 0;

    ngx_queue_init(&waited);

    if (!ngx_queue_empty(&rd->asked)) {
        ngx_queue_add(&waited, &rd->asked);
        ngx_queue_init(&rd->asked);
    }

    /* (the probe is one of them) */

    for (n = 1; !ngx_queue_empty(&waited); n++) {
        q = ngx_queue_head(&waited);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_bayeux_redis_cmd_t, queue);
        ngx_bayeux_redis_submit(cmd);
    }

    /* before the probe's result, and theirs, reach a client */

    ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                  "bayeux: redis %V of location \"%V\" serves the slot: "
                  "the %ui requests that waited go on",
                  &rd->addr, &rd->endpoint->name, n);
}


static void
ngx_bayeux_redis_cmd_done(ngx_bayeux_redis_cmd_t *cmd, redisReply *reply)
{
    ngx_bayeux_redis_t        *rd = cmd->redis;
    ngx_bayeux_redis_done_pt   done;

    if (rd->exiting) {
        ngx_bayeux_redis_cmd_free(cmd);
        return;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_bayeux_redis_log_error(rd, reply);
    }

    done = ngx_bayeux_redis_kinds[cmd->kind].done;

    if (done) {
        done(cmd, reply);
    }

    ngx_free(cmd);
}


static ngx_int_t
ngx_bayeux_redis_messages(redisReply *list, ngx_pool_t *pool,
    ngx_array_t **messages)
{
    ngx_str_t   *m;
    ngx_uint_t   i, n;
    redisReply  *r;

    n = (list && list->type == REDIS_REPLY_ARRAY) ? list->elements : 0;

    *messages = ngx_array_create(pool, n ? n : 1, sizeof(ngx_str_t));
    if (*messages == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        r = list->element[i];

        if (r->type != REDIS_REPLY_STRING) {
            continue;
        }

        m = ngx_array_push(*messages);
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->data = ngx_pnalloc(pool, r->len);
        if (m->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(m->data, r->str, r->len);
        m->len = r->len;
    }

    return NGX_OK;
}


static void
ngx_bayeux_redis_log_error(ngx_bayeux_redis_t *rd, redisReply *reply)
{
    /* once a second at most: a Redis that refuses refuses every request */

    if (rd->error_time == ngx_time()) {
        return;
    }

    rd->error_time = ngx_time();

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "bayeux: redis %V of location \"%V\" failed a command: %*s",
                  &rd->addr, &rd->endpoint->name, reply->len, reply->str);
}
