
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include "bb.h"

#include <signal.h>
#include <getopt.h>
#include <sys/resource.h>


/*
 * bayeux-bench: a Bayeux 1.0 load generator, one thread on epoll.
 *
 * Scenarios:
 *
 *   handshake  C connections post /meta/handshake over and over
 *   rate       the same request to any path (nginx "return 200")
 *   fanout     N subscribers on one channel, P publishers at full
 *              speed or at a fixed rate
 *   rooms      CometD's benchmark: N clients, R rooms, K rooms each,
 *              batches of B messages to a room; with --rooms-even, the
 *              rooms taken in turn, so each has as many subscribers
 *   idle       N sessions with a held /meta/connect; the resident memory
 *              of the server processes before and after
 *   service    C sessions (long-polling) post remote calls (a /service
 *              message each) over and over
 *
 * With --publish-via PATH, the publishers of fanout and rooms post plain
 * HTTP {"channel","data"} (an array for batches) to PATH, a
 * bayeux_publisher location, instead of Bayeux publishes of sessions.
 *
 * Every published message carries its send time (CLOCK_MONOTONIC,
 * microseconds), its publisher and a sequence number in its data:
 * {"bt":T,"bp":P,"bs":S,"x":"padding"}.  The result is one line of
 * key=value pairs on stdout; progress goes to stderr.
 */


#define BB_PH_START       0
#define BB_PH_HANDSHAKE   1
#define BB_PH_SUBSCRIBE   2
#define BB_PH_CONNECT0    3
#define BB_PH_CONNECT     4
#define BB_PH_FAILED      5

#define BB_MAX_PIDS       16
#define BB_MAX_RECONNECTS 5


typedef struct {
    const char               *scenario;
    const char               *path;
    const char               *label;
    const char               *handshake_ext;
    int                       ack;
    int                       hop;
    const char               *publish_via;
    const char               *service;
    int                       websocket;
    int                       clients;
    int                       connections;
    int                       publishers;
    double                    rate;         /* batches/s; 0: full speed */
    int                       batch;
    int                       size;
    int                       rooms;
    int                       rooms_per_client;
    int                       rooms_even;
    double                    duration;
    double                    warmup;
    double                    drain;
    double                    quiet;
    double                    settle;
    double                    setup_timeout;
    int                       concurrency;
    int                       max_seconds;
    unsigned                  seed;
    pid_t                     pids[BB_MAX_PIDS];
    int                       npids;
    pid_t                     redis_pids[BB_MAX_PIDS];
    int                       nredis;
} bb_conf_t;


typedef struct {
    uint64_t                  delivered;    /* every delivery received */
    uint64_t                  expected;     /* acked x subscribers */
    uint64_t                  published;    /* acked messages */
    uint64_t                  publish_failed;
    uint64_t                  win_delivered;
    uint64_t                  win_published;
    uint64_t                  win_responses;
    uint64_t                  win_ok;
    uint64_t                  win_bayeux_ok;
    uint64_t                  connects;
    uint64_t                  errors;
    uint64_t                  reconnects;
    uint64_t                  out_of_order;
    uint64_t                  late;         /* fixed rate: sends behind */
    bb_hist_t                 hist;
    int                       counting;
} bb_stats_t;


typedef struct {
    bb_conn_t                 conn;
    int                       index;
    int                       phase;
    int                       reconnects;
    u_char                    id[64];
    size_t                    id_len;
    u_char                   *connect;      /* prebuilt request or frame */
    size_t                    connect_len;
    unsigned long             batch;        /* --ack: the last received */
    int                       hops;         /* --hop: connects moved */
    int                      *rooms;
    int                       nrooms;
    uint32_t                 *last_seq;     /* per publisher */
    unsigned                  ready:1;
} bb_client_t;


typedef struct {
    bb_conn_t                 conn;
    int                       index;
    bb_client_t              *session;      /* fanout: its own */
    int                       room;
    int                       nmsgs;
    uint64_t                  due;
    uint64_t                  sent_at;
    uint32_t                  seq;
    unsigned                  ready:1;
    unsigned                  busy:1;
} bb_publisher_t;


typedef struct {
    bb_conn_t                 conn;
    int                       index;
    int                       phase;        /* service: a session's */
    uint64_t                  sent_at;
    u_char                   *request;
    size_t                    request_len;
} bb_requester_t;


typedef struct {
    uint64_t                  cpu;          /* clock ticks */
    uint64_t                  rss;          /* kB */
} bb_proc_t;


static void bb_usage(void);
static void bb_options(int argc, char **argv);
static void bb_handshake_make(void);
static void bb_deadline(int signo);
static void bb_raise_nofile(int need);
static void bb_loop(uint64_t until, int (*done)(void));
static void bb_tick(uint64_t now);
static int bb_setup_done(void);
static int bb_publishers_ready(void);
static int bb_drained(void);
static void bb_start_clients(bb_client_t *clients, int n, int *next,
    int *active);

static void bb_client_start(bb_client_t *cl);
static void bb_client_open(bb_conn_t *c);
static void bb_client_error(bb_conn_t *c);
static void bb_client_handler(bb_conn_t *c, int status, u_char *body,
    size_t len);
static void bb_client_fail(bb_client_t *cl);
static int bb_is_pub_session(bb_client_t *cl);
static void bb_client_ready(bb_client_t *cl);
static int bb_client_send(bb_client_t *cl, const char *suffix,
    const u_char *body, size_t len);
static void bb_client_connect0(bb_client_t *cl);
static void bb_client_hop(bb_client_t *cl);
static void bb_client_connect_loop(bb_client_t *cl);
static void bb_client_connect_build(bb_client_t *cl);
static void bb_client_acked(bb_client_t *cl, u_char *body, size_t len);
static void bb_scan(bb_client_t *cl, u_char *p, size_t len);

static void bb_publisher_start(bb_publisher_t *p);
static void bb_publisher_open(bb_conn_t *c);
static void bb_publisher_error(bb_conn_t *c);
static void bb_publisher_handler(bb_conn_t *c, int status, u_char *body,
    size_t len);
static void bb_publish(bb_publisher_t *p, uint64_t now, uint64_t stamp);

static void bb_requester_open(bb_conn_t *c);
static void bb_requester_error(bb_conn_t *c);
static void bb_requester_handler(bb_conn_t *c, int status, u_char *body,
    size_t len);
static void bb_requester_send(bb_requester_t *rq);

static void bb_service_handler(bb_requester_t *rq, int status,
    u_char *body, size_t len);
static size_t bb_http_request(bb_buf_t *b, const char *suffix, int target,
    const u_char *body, size_t len);
static size_t bb_http_post(bb_buf_t *b, const char *path,
    const char *suffix, int target, const u_char *body, size_t len);
static size_t bb_count(u_char *p, size_t len, const char *what);
static int bb_find_client_id(u_char *p, size_t len, u_char *id,
    size_t *id_len);
static uint64_t bb_number(u_char **pp, u_char *last);
static uint32_t bb_random(void);

static int scenario_rate(const char *suffix);
static int scenario_publish(void);
static int scenario_service(void);
static int scenario_idle(void);

static void bb_proc_read(pid_t *pids, int n, bb_proc_t *p);
static double bb_self_cpu(void);
static void bb_result_start(void);
static void bb_result(const char *key, const char *fmt, ...);
static void bb_result_end(void);
static void bb_log(const char *fmt, ...);


static bb_conf_t         bb_conf;
static bb_stats_t        bb_stats;
static bb_client_t      *bb_clients;
static int               bb_nclients;
static int               bb_next_client;
static int               bb_active_setups;
static int               bb_ready;
static int               bb_failed;
static bb_client_t      *bb_pub_sessions;
static int               bb_next_pub_session;
static int               bb_active_pub_setups;
static int               bb_pub_ready;
static int               bb_pub_failed;
static bb_publisher_t   *bb_publishers;
static int               bb_npublishers;
static int               bb_publishing;
static uint64_t          bb_interval;
static uint64_t         *bb_room_subs;
static bb_requester_t   *bb_requesters;
static int               bb_nrequesters;
static int               bb_sending;
static bb_buf_t          bb_body;
static bb_buf_t          bb_req;
static uint32_t          bb_rand_state = 2463534242U;
static uint64_t          bb_last_progress;
static uint64_t          bb_last_delivered;


static u_char           *bb_handshake;
static size_t            bb_handshake_len;


int
main(int argc, char **argv)
{
    int  rc, max;

    bb_options(argc, argv);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, bb_deadline);
    alarm((unsigned) bb_conf.max_seconds);

    bb_rand_state ^= bb_conf.seed * 2654435761U;

    max = bb_conf.clients + bb_conf.connections + 3 * bb_conf.publishers + 16;

    bb_raise_nofile(max);

    if (bb_net_init(max) != BB_OK) {
        bb_fatal("epoll_create1() failed: %s", strerror(errno));
    }

    if (strcmp(bb_conf.scenario, "handshake") == 0) {
        rc = scenario_rate("/handshake");

    } else if (strcmp(bb_conf.scenario, "rate") == 0) {
        rc = scenario_rate("");

    } else if (strcmp(bb_conf.scenario, "fanout") == 0
               || strcmp(bb_conf.scenario, "rooms") == 0)
    {
        rc = scenario_publish();

    } else if (strcmp(bb_conf.scenario, "idle") == 0) {
        rc = scenario_idle();

    } else if (strcmp(bb_conf.scenario, "service") == 0) {
        rc = scenario_service();

    } else {
        bb_usage();
        return 2;
    }

    bb_net_close_all();

    return rc;
}


static void
bb_usage(void)
{
    fprintf(stderr,
        "usage: bayeux-bench --scenario NAME --target HOST:PORT[,...] "
        "[options]\n"
        "\n"
        "  --scenario         handshake | rate | fanout | rooms | idle |"
        " service\n"
        "  --target           server address(es); clients take them in "
        "turn\n"
        "  --path             endpoint path (default /cometd)\n"
        "  --transport        long-polling | websocket (subscribers)\n"
        "  --connections C    handshake, rate: concurrent connections\n"
        "  --clients N        fanout, rooms, idle: sessions\n"
        "  --publishers P     fanout, rooms: publishing connections\n"
        "  --rate R           publish batches per second in all; "
        "0: full speed\n"
        "  --batch B          messages per publish request\n"
        "  --size S           bytes of message data\n"
        "  --rooms R          rooms: channels\n"
        "  --rooms-per-client K\n"
        "  --rooms-even       rooms: client i takes rooms iK .. iK+K-1 "
        "(modulo R)\n"
        "                     instead of K at random\n"
        "  --duration S       measured seconds\n"
        "  --warmup S         seconds before the measurement\n"
        "  --drain S          at most this long for the last deliveries\n"
        "  --quiet S          ... and no longer than this without one\n"
        "  --settle S         idle: seconds before the memory is read\n"
        "  --setup-timeout S  at most this long for sessions to set up\n"
        "  --concurrency N    sessions setting up at once\n"
        "  --pid PID          a server process (CPU and memory), "
        "repeatable\n"
        "  --redis-pid PID    a Redis server process, repeatable\n"
        "  --handshake-ext J  a JSON object sent as the ext of every "
        "handshake\n"
        "                     (e.g. '{\"token\":\"<JWT>\"}')\n"
        "  --ack              sessions use the ack extension (handshake "
        "ext.ack,\n"
        "                     each connect acknowledging the last batch)\n"
        "  --hop              long-polling sessions send each connect to "
        "the next\n"
        "                     target, on a new connection (no sticky "
        "sessions)\n"
        "  --publish-via PATH fanout, rooms: publishers post {\"channel\","
        "\"data\"}\n"
        "                     to PATH (a bayeux_publisher location)\n"
        "  --service CHANNEL  service: the channel of the calls "
        "(default\n"
        "                     /service/bench)\n"
        "  --label TEXT       echoed in the result line\n"
        "  --max-seconds S    the run is killed after this long\n"
        "  --seed N           for the choice of rooms\n");
}


static void
bb_options(int argc, char **argv)
{
    int          c, i;
    char        *p, *s, *save;
    static const struct option  opts[] = {
        { "scenario", required_argument, NULL, 'S' },
        { "target", required_argument, NULL, 't' },
        { "path", required_argument, NULL, 'u' },
        { "transport", required_argument, NULL, 'T' },
        { "connections", required_argument, NULL, 'c' },
        { "clients", required_argument, NULL, 'n' },
        { "publishers", required_argument, NULL, 'p' },
        { "rate", required_argument, NULL, 'r' },
        { "batch", required_argument, NULL, 'b' },
        { "size", required_argument, NULL, 's' },
        { "rooms", required_argument, NULL, 'R' },
        { "rooms-per-client", required_argument, NULL, 'K' },
        { "rooms-even", no_argument, NULL, 'N' },
        { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'w' },
        { "drain", required_argument, NULL, 'D' },
        { "quiet", required_argument, NULL, 'q' },
        { "settle", required_argument, NULL, 'e' },
        { "setup-timeout", required_argument, NULL, 'O' },
        { "concurrency", required_argument, NULL, 'C' },
        { "pid", required_argument, NULL, 'P' },
        { "redis-pid", required_argument, NULL, 'X' },
        { "label", required_argument, NULL, 'l' },
        { "handshake-ext", required_argument, NULL, 'E' },
        { "ack", no_argument, NULL, 'A' },
        { "hop", no_argument, NULL, 'H' },
        { "publish-via", required_argument, NULL, 'V' },
        { "service", required_argument, NULL, 'Y' },
        { "max-seconds", required_argument, NULL, 'M' },
        { "seed", required_argument, NULL, 'x' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    bb_conf.scenario = "";
    bb_conf.path = "/cometd";
    bb_conf.label = "";
    bb_conf.service = "/service/bench";
    bb_conf.connections = 0;
    bb_conf.clients = 0;
    bb_conf.publishers = 1;
    bb_conf.batch = 1;
    bb_conf.size = 50;
    bb_conf.rooms = 1;
    bb_conf.rooms_per_client = 1;
    bb_conf.duration = 5;
    bb_conf.warmup = 1;
    bb_conf.drain = 10;
    bb_conf.quiet = 3;
    bb_conf.settle = 2;
    bb_conf.setup_timeout = 60;
    bb_conf.concurrency = 256;
    bb_conf.max_seconds = 300;
    bb_conf.seed = 1;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {

        case 'S':
            bb_conf.scenario = optarg;
            break;

        case 't':
            s = strdup(optarg);

            for (p = strtok_r(s, ",", &save); p;
                 p = strtok_r(NULL, ",", &save))
            {
                if (bb_net_add_target(p) != BB_OK) {
                    bb_fatal("bad target \"%s\"", p);
                }
            }

            free(s);
            break;

        case 'u':
            bb_conf.path = optarg;
            break;

        case 'T':
            if (strcmp(optarg, "websocket") == 0) {
                bb_conf.websocket = 1;

            } else if (strcmp(optarg, "long-polling") != 0) {
                bb_fatal("unknown transport \"%s\"", optarg);
            }

            break;

        case 'c':
            bb_conf.connections = atoi(optarg);
            break;

        case 'n':
            bb_conf.clients = atoi(optarg);
            break;

        case 'p':
            bb_conf.publishers = atoi(optarg);
            break;

        case 'r':
            bb_conf.rate = atof(optarg);
            break;

        case 'b':
            bb_conf.batch = atoi(optarg);
            break;

        case 's':
            bb_conf.size = atoi(optarg);
            break;

        case 'R':
            bb_conf.rooms = atoi(optarg);
            break;

        case 'K':
            bb_conf.rooms_per_client = atoi(optarg);
            break;

        case 'N':
            bb_conf.rooms_even = 1;
            break;

        case 'd':
            bb_conf.duration = atof(optarg);
            break;

        case 'w':
            bb_conf.warmup = atof(optarg);
            break;

        case 'D':
            bb_conf.drain = atof(optarg);
            break;

        case 'q':
            bb_conf.quiet = atof(optarg);
            break;

        case 'e':
            bb_conf.settle = atof(optarg);
            break;

        case 'O':
            bb_conf.setup_timeout = atof(optarg);
            break;

        case 'C':
            bb_conf.concurrency = atoi(optarg);
            break;

        case 'P':
            if (bb_conf.npids == BB_MAX_PIDS) {
                bb_fatal("too many --pid");
            }

            bb_conf.pids[bb_conf.npids++] = (pid_t) atoi(optarg);
            break;

        case 'X':
            if (bb_conf.nredis == BB_MAX_PIDS) {
                bb_fatal("too many --redis-pid");
            }

            bb_conf.redis_pids[bb_conf.nredis++] = (pid_t) atoi(optarg);
            break;

        case 'l':
            bb_conf.label = optarg;
            break;

        case 'E':
            bb_conf.handshake_ext = optarg;
            break;

        case 'A':
            bb_conf.ack = 1;
            break;

        case 'H':
            bb_conf.hop = 1;
            break;

        case 'V':
            if (optarg[0] != '/') {
                bb_fatal("--publish-via: a path starting with /");
            }

            bb_conf.publish_via = optarg;
            break;

        case 'Y':
            if (strncmp(optarg, "/service/", 9) != 0) {
                bb_fatal("--service: a channel under /service/");
            }

            bb_conf.service = optarg;
            break;

        case 'M':
            bb_conf.max_seconds = atoi(optarg);
            break;

        case 'x':
            bb_conf.seed = (unsigned) atoi(optarg);
            break;

        default:
            bb_usage();
            exit(c == 'h' ? 0 : 2);
        }
    }

    if (bb_net_targets() == 0 || bb_conf.scenario[0] == '\0') {
        bb_usage();
        exit(2);
    }

    if (bb_conf.publishers < 1 || bb_conf.batch < 1 || bb_conf.rooms < 1
        || bb_conf.rooms_per_client < 1
        || bb_conf.rooms_per_client > bb_conf.rooms
        || bb_conf.concurrency < 1 || bb_conf.duration <= 0
        || bb_conf.max_seconds < 1 || bb_conf.size < 0)
    {
        bb_fatal("bad option value");
    }

    if (bb_conf.hop && bb_conf.websocket) {
        bb_fatal("--hop: long-polling only");
    }

    for (i = 0; i < bb_conf.npids; i++) {
        if (bb_conf.pids[i] <= 0) {
            bb_fatal("bad --pid");
        }
    }

    bb_handshake_make();
}


/* the handshake every session and requester sends, with --handshake-ext */

static void
bb_handshake_make(void)
{
    size_t       len;
    const char  *ext;

    ext = bb_conf.handshake_ext;

    if (bb_conf.ack) {
        if (ext != NULL) {
            bb_fatal("--ack and --handshake-ext: one or the other");
        }

        ext = "{\"ack\":true}";
    }

    if (ext != NULL && (ext[0] != '{' || ext[strlen(ext) - 1] != '}')) {
        bb_fatal("--handshake-ext: not a JSON object");
    }

    len = 256 + (ext ? strlen(ext) : 0);

    bb_handshake = malloc(len);
    if (bb_handshake == NULL) {
        bb_fatal("out of memory");
    }

    bb_handshake_len = (size_t) snprintf((char *) bb_handshake, len,
        "[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\","
        "\"supportedConnectionTypes\":[\"websocket\",\"long-polling\"],"
        "%s%s%s\"id\":\"1\"}]",
        ext ? "\"ext\":" : "", ext ? ext : "", ext ? "," : "");
}


static void
bb_deadline(int signo)
{
    static const char  msg[] =
        "bayeux-bench: --max-seconds reached, giving up\n"
        "result error=deadline\n";

    (void) signo;

    (void) write(2, msg, sizeof(msg) - 1);
    _exit(3);
}


/*
 * Thousands of sessions need as many descriptors: the soft limit is
 * often 1024 where the hard one allows far more, and root may raise
 * the hard one too.  Failing here names the cause, where a full table
 * would show up as sessions failing to connect.
 */

static void
bb_raise_nofile(int need)
{
    rlim_t         want, hard;
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        bb_fatal("getrlimit(RLIMIT_NOFILE) failed: %s", strerror(errno));
    }

    want = (rlim_t) need + 64;
    hard = rl.rlim_max;

    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want) {
        return;
    }

    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        rl.rlim_max = want;
    }

    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : rl.rlim_max;

    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        bb_fatal("%d connections need %llu descriptors: setrlimit("
                 "RLIMIT_NOFILE) failed: %s (the hard limit is %llu)",
                 need, (unsigned long long) want, strerror(errno),
                 (unsigned long long) hard);
    }
}


/* runs the event loop until "until" (microseconds) or done() */

static void
bb_loop(uint64_t until, int (*done)(void))
{
    int       timeout;
    uint64_t  now;

    for ( ;; ) {
        now = bb_now();

        bb_tick(now);

        if (done && done()) {
            return;
        }

        if (now >= until) {
            return;
        }

        timeout = (int) ((until - now + 999) / 1000);

        if (bb_publishing && bb_conf.rate > 0) {
            timeout = 1;

        } else if (timeout > 50) {
            timeout = 50;
        }

        bb_net_poll(timeout);
    }
}


static void
bb_tick(uint64_t now)
{
    int              i;
    bb_publisher_t  *p;

    bb_start_clients(bb_clients, bb_nclients, &bb_next_client,
                     &bb_active_setups);

    if (bb_pub_sessions) {
        bb_start_clients(bb_pub_sessions, bb_npublishers,
                         &bb_next_pub_session, &bb_active_pub_setups);
    }

    if (!bb_publishing) {
        return;
    }

    for (i = 0; i < bb_npublishers; i++) {
        p = &bb_publishers[i];

        if (!p->ready || p->busy) {
            continue;
        }

        if (bb_conf.rate == 0) {
            bb_publish(p, now, now);
            continue;
        }

        if (now >= p->due) {
            if (now - p->due > bb_interval) {
                bb_stats.late++;
            }

            bb_publish(p, now, p->due);
            p->due += bb_interval;
        }
    }
}


static void
bb_start_clients(bb_client_t *clients, int n, int *next, int *active)
{
    while (*next < n && *active < bb_conf.concurrency) {
        (*active)++;
        bb_client_start(&clients[(*next)++]);
    }
}


static int
bb_setup_done(void)
{
    return bb_ready + bb_failed == bb_nclients;
}


static int
bb_publishers_ready(void)
{
    int  i;

    if (bb_pub_sessions && bb_pub_ready + bb_pub_failed < bb_npublishers) {
        return 0;
    }

    for (i = 0; i < bb_npublishers; i++) {
        if (!bb_publishers[i].ready) {
            return 0;
        }
    }

    return 1;
}


static int
bb_drained(void)
{
    int       i;
    uint64_t  now;

    for (i = 0; i < bb_npublishers; i++) {
        if (bb_publishers[i].busy) {
            return 0;
        }
    }

    if (bb_stats.delivered >= bb_stats.expected) {
        return 1;
    }

    /* nothing more for --quiet seconds: what is missing is lost */

    now = bb_now();

    if (bb_stats.delivered != bb_last_delivered) {
        bb_last_delivered = bb_stats.delivered;
        bb_last_progress = now;
        return 0;
    }

    return now - bb_last_progress > (uint64_t) (bb_conf.quiet * 1e6);
}


/* sessions: handshake, subscribe, connect, then a /meta/connect loop */

static void
bb_client_start(bb_client_t *cl)
{
    cl->phase = BB_PH_HANDSHAKE;
    cl->conn.handler = bb_client_handler;
    cl->conn.open = bb_client_open;
    cl->conn.error = bb_client_error;
    cl->conn.data = cl;
    cl->conn.fd = -1;

    if (bb_conn_open(&cl->conn, cl->index,
                     bb_conf.websocket ? bb_conf.path : NULL)
        != BB_OK)
    {
        bb_log("connect() failed: %s", strerror(errno));
        bb_client_fail(cl);
    }
}


static void
bb_client_open(bb_conn_t *c)
{
    bb_client_t  *cl = c->data;

    if (cl->phase == BB_PH_HANDSHAKE) {
        (void) bb_client_send(cl, "/handshake", bb_handshake,
                              bb_handshake_len);
        return;
    }

    if (bb_conf.hop) {
        /* the request names its target's host */
        bb_client_connect_build(cl);
    }

    /* reconnected, or moved to the next target: the session goes on */
    (void) bb_conn_send(c, cl->connect, cl->connect_len);
}


static void
bb_client_error(bb_conn_t *c)
{
    bb_client_t  *cl = c->data;

    if (cl->phase == BB_PH_CONNECT && cl->reconnects < BB_MAX_RECONNECTS) {
        cl->reconnects++;
        bb_stats.reconnects++;

        if (bb_conn_open(c, cl->index,
                         bb_conf.websocket ? bb_conf.path : NULL)
            == BB_OK)
        {
            return;
        }
    }

    bb_client_fail(cl);
}


static void
bb_client_fail(bb_client_t *cl)
{
    int  was;

    bb_conn_close(&cl->conn);

    if (cl->phase == BB_PH_FAILED) {
        return;
    }

    was = cl->phase;
    cl->phase = BB_PH_FAILED;
    bb_stats.errors++;

    if (cl->ready) {
        return;
    }

    if (bb_is_pub_session(cl)) {
        bb_pub_failed++;
        bb_active_pub_setups--;

    } else {
        bb_failed++;
        bb_active_setups--;
    }

    if (bb_stats.errors <= 10) {
        bb_log("session %d failed in phase %d", cl->index, was);
    }
}


static int
bb_is_pub_session(bb_client_t *cl)
{
    return bb_pub_sessions != NULL
           && cl >= bb_pub_sessions
           && cl < bb_pub_sessions + bb_npublishers;
}


static void
bb_client_ready(bb_client_t *cl)
{
    cl->ready = 1;

    if (bb_is_pub_session(cl)) {
        bb_pub_ready++;
        bb_active_pub_setups--;
        bb_publisher_start(&bb_publishers[cl - bb_pub_sessions]);

    } else {
        bb_ready++;
        bb_active_setups--;
    }
}


static int
bb_client_send(bb_client_t *cl, const char *suffix, const u_char *body,
    size_t len)
{
    size_t  n;

    if (bb_conf.websocket) {
        return bb_conn_send_text(&cl->conn, body, len);
    }

    n = bb_http_request(&bb_req, suffix, cl->conn.target, body, len);

    return bb_conn_send(&cl->conn, bb_req.data, n);
}


static void
bb_client_handler(bb_conn_t *c, int status, u_char *body, size_t len)
{
    int           i, n;
    bb_client_t  *cl = c->data;

    if (!c->websocket && status != 200) {
        if (bb_stats.errors < 10) {
            bb_log("session %d: HTTP status %d: %.*s", cl->index, status,
                   (int) (len > 200 ? 200 : len), body);
        }

        bb_client_fail(cl);
        return;
    }

    switch (cl->phase) {

    case BB_PH_HANDSHAKE:
        if (bb_find_client_id(body, len, cl->id, &cl->id_len) != BB_OK) {
            bb_log("session %d: no clientId in: %.*s", cl->index,
                   (int) (len > 200 ? 200 : len), body);
            bb_client_fail(cl);
            return;
        }

        if (cl->nrooms == 0) {
            bb_client_connect0(cl);
            return;
        }

        bb_body.len = 0;
        bb_body.pos = 0;

        if (bb_buf_reserve(&bb_body, 256 + 32 * (size_t) cl->nrooms)
            != BB_OK)
        {
            bb_fatal("out of memory");
        }

        n = sprintf((char *) bb_body.data,
                    "[{\"channel\":\"/meta/subscribe\",\"clientId\":\"%.*s\","
                    "\"subscription\":",
                    (int) cl->id_len, cl->id);

        if (cl->nrooms == 1) {
            n += sprintf((char *) bb_body.data + n, "\"/bench/room/%d\"",
                         cl->rooms[0]);

        } else {
            bb_body.data[n++] = '[';

            for (i = 0; i < cl->nrooms; i++) {
                n += sprintf((char *) bb_body.data + n, "%s\"/bench/room/%d\"",
                             i ? "," : "", cl->rooms[i]);
            }

            bb_body.data[n++] = ']';
        }

        n += sprintf((char *) bb_body.data + n, ",\"id\":\"2\"}]");

        cl->phase = BB_PH_SUBSCRIBE;
        (void) bb_client_send(cl, "", bb_body.data, (size_t) n);
        return;

    case BB_PH_SUBSCRIBE:
        if (memmem(body, len, "/meta/subscribe", 15) == NULL) {
            return;
        }

        if (bb_count(body, len, "\"successful\":true") == 0) {
            bb_log("session %d: subscribe failed: %.*s", cl->index,
                   (int) (len > 200 ? 200 : len), body);
            bb_client_fail(cl);
            return;
        }

        for (i = 0; i < cl->nrooms; i++) {
            bb_room_subs[cl->rooms[i]]++;
        }

        bb_client_connect0(cl);
        return;

    case BB_PH_CONNECT0:
        bb_scan(cl, body, len);

        if (memmem(body, len, "/meta/connect", 13) == NULL) {
            return;
        }

        if (bb_count(body, len, "\"successful\":true") == 0) {
            bb_log("session %d: connect failed: %.*s", cl->index,
                   (int) (len > 200 ? 200 : len), body);
            bb_client_fail(cl);
            return;
        }

        bb_client_connect_loop(cl);
        return;

    case BB_PH_CONNECT:
        bb_scan(cl, body, len);

        if (c->websocket && memmem(body, len, "/meta/connect", 13) == NULL) {
            /* deliveries pushed while the connect is held */
            return;
        }

        bb_stats.connects++;

        if (bb_conf.ack) {
            bb_client_acked(cl, body, len);
        }

        if (memmem(body, len, "\"successful\":false", 18) != NULL) {
            bb_stats.errors++;

            if (bb_stats.errors <= 10) {
                bb_log("session %d: connect failed: %.*s", cl->index,
                       (int) (len > 200 ? 200 : len), body);
            }

            bb_client_fail(cl);
            return;
        }

        if (bb_conf.hop) {
            bb_client_hop(cl);
            return;
        }

        bb_conn_defer(c, cl->connect, cl->connect_len);
        return;

    default:
        return;
    }
}


/* --hop: the next connect goes to the next target, on a new connection */

static void
bb_client_hop(bb_client_t *cl)
{
    cl->hops++;
    bb_conn_close(&cl->conn);

    if (bb_conn_open(&cl->conn, cl->index + cl->hops, NULL) != BB_OK) {
        bb_client_fail(cl);
    }
}


/* the first connect returns at once (advice.timeout 0) */

static void
bb_client_connect0(bb_client_t *cl)
{
    int  n;

    bb_body.len = 0;
    bb_body.pos = 0;

    if (bb_buf_reserve(&bb_body, 256) != BB_OK) {
        bb_fatal("out of memory");
    }

    n = sprintf((char *) bb_body.data,
                "[{\"channel\":\"/meta/connect\",\"clientId\":\"%.*s\","
                "\"connectionType\":\"%s\",\"advice\":{\"timeout\":0},"
                "\"id\":\"3\"}]",
                (int) cl->id_len, cl->id,
                bb_conf.websocket ? "websocket" : "long-polling");

    cl->phase = BB_PH_CONNECT0;
    (void) bb_client_send(cl, "/connect", bb_body.data, (size_t) n);
}


/*
 * The held connect, built once: the same bytes go out every time; with
 * --ack, built again whenever the batch it acknowledges changes.
 */

static void
bb_client_connect_loop(bb_client_t *cl)
{
    cl->batch = 0;
    bb_client_connect_build(cl);

    cl->phase = BB_PH_CONNECT;

    if (bb_conn_send(&cl->conn, cl->connect, cl->connect_len) != BB_OK) {
        return;
    }

    bb_client_ready(cl);
}


static void
bb_client_connect_build(bb_client_t *cl)
{
    int      n;
    size_t   h;
    u_char   body[256], ext[64];

    ext[0] = '\0';

    if (bb_conf.ack) {
        snprintf((char *) ext, sizeof(ext), "\"ext\":{\"ack\":%lu},",
                 cl->batch);
    }

    n = sprintf((char *) body,
                "[{\"channel\":\"/meta/connect\",\"clientId\":\"%.*s\","
                "\"connectionType\":\"%s\",%s\"id\":\"4\"}]",
                (int) cl->id_len, cl->id,
                bb_conf.websocket ? "websocket" : "long-polling",
                (char *) ext);

    free(cl->connect);

    if (bb_conf.websocket) {
        cl->connect = malloc((size_t) n + 14);
        if (cl->connect == NULL) {
            bb_fatal("out of memory");
        }

        h = bb_ws_frame_header(cl->connect, (size_t) n);
        memcpy(cl->connect + h, body, (size_t) n);
        cl->connect_len = h + (size_t) n;

    } else {
        cl->connect_len = bb_http_request(&bb_req, "/connect",
                                          cl->conn.target, body, (size_t) n);
        cl->connect = malloc(cl->connect_len);
        if (cl->connect == NULL) {
            bb_fatal("out of memory");
        }

        memcpy(cl->connect, bb_req.data, cl->connect_len);
    }
}


/* --ack: the batch a connect reply names, the next connect acknowledges */

static void
bb_client_acked(bb_client_t *cl, u_char *body, size_t len)
{
    u_char         *p, *last, *found;
    unsigned long   batch;

    last = body + len;
    found = NULL;

    for (p = body;
         (p = memmem(p, (size_t) (last - p), "\"ack\":", 6)) != NULL;
         p += 6)
    {
        found = p + 6;
    }

    if (found == NULL || found >= last || *found < '0' || *found > '9') {
        return;
    }

    batch = strtoul((char *) found, NULL, 10);

    if (batch != cl->batch) {
        cl->batch = batch;
        bb_client_connect_build(cl);
    }
}


/* the deliveries in a response: their latency, order and number */

static void
bb_scan(bb_client_t *cl, u_char *p, size_t len)
{
    u_char    *last;
    uint64_t   now, t, pub, seq;

    last = p + len;
    now = 0;

    while ((p = memmem(p, (size_t) (last - p), "\"bt\":", 5)) != NULL) {
        p += 5;
        t = bb_number(&p, last);
        pub = 0;
        seq = 0;

        if (last - p > 6 && memcmp(p, ",\"bp\":", 6) == 0) {
            p += 6;
            pub = bb_number(&p, last);
        }

        if (last - p > 6 && memcmp(p, ",\"bs\":", 6) == 0) {
            p += 6;
            seq = bb_number(&p, last);
        }

        if (now == 0) {
            now = bb_now();
        }

        bb_stats.delivered++;

        if (bb_stats.counting) {
            bb_stats.win_delivered++;
            bb_hist_add(&bb_stats.hist, now > t ? now - t : 0);
        }

        if (cl->last_seq && pub < (uint64_t) bb_npublishers) {
            if (seq <= cl->last_seq[pub]) {
                bb_stats.out_of_order++;
            }

            cl->last_seq[pub] = (uint32_t) seq;
        }
    }
}


/* publishers post batches of messages to a room */

static void
bb_publisher_start(bb_publisher_t *p)
{
    p->conn.handler = bb_publisher_handler;
    p->conn.open = bb_publisher_open;
    p->conn.error = bb_publisher_error;
    p->conn.data = p;
    p->conn.fd = -1;

    if (bb_conn_open(&p->conn, p->index, NULL) != BB_OK) {
        bb_fatal("connect() failed: %s", strerror(errno));
    }
}


static void
bb_publisher_open(bb_conn_t *c)
{
    bb_publisher_t  *p = c->data;

    p->ready = 1;
}


static void
bb_publisher_error(bb_conn_t *c)
{
    bb_publisher_t  *p = c->data;

    bb_stats.errors++;
    bb_stats.reconnects++;

    if (p->busy) {
        p->busy = 0;
        bb_stats.publish_failed += (uint64_t) p->nmsgs;
    }

    p->ready = 0;

    if (bb_stats.reconnects > 100
        || bb_conn_open(&p->conn, p->index, NULL) != BB_OK)
    {
        bb_fatal("publisher %d: connection lost", p->index);
    }
}


static void
bb_publish(bb_publisher_t *p, uint64_t now, uint64_t stamp)
{
    int            i, n, room, pad, k;
    size_t         need;
    u_char        *d;
    bb_client_t   *from;

    if (p->session) {
        from = p->session;
        room = 0;

    } else if (bb_conf.publish_via && bb_conf.rooms == 1) {
        /* fanout through the publisher location: no session */
        from = NULL;
        room = 0;

    } else {
        for (i = 0; i < 1000; i++) {
            from = &bb_clients[bb_random() % (uint32_t) bb_nclients];

            if (from->ready && from->phase != BB_PH_FAILED) {
                break;
            }
        }

        if (i == 1000) {
            bb_fatal("no session left to publish from");
        }

        room = from->rooms[bb_random() % (uint32_t) from->nrooms];
    }

    need = (size_t) bb_conf.batch * (200 + (size_t) bb_conf.size) + 16;

    bb_body.len = 0;
    bb_body.pos = 0;

    if (bb_buf_reserve(&bb_body, need) != BB_OK) {
        bb_fatal("out of memory");
    }

    d = bb_body.data;
    n = 0;

    /* the publisher location takes one message as an object */
    if (bb_conf.publish_via == NULL || bb_conf.batch > 1) {
        d[n++] = '[';
    }

    for (i = 0; i < bb_conf.batch; i++) {
        p->seq++;

        if (bb_conf.publish_via) {
            n += sprintf((char *) d + n,
                         "%s{\"channel\":\"/bench/room/%d\",\"data\":",
                         i ? "," : "", room);

        } else {
            n += sprintf((char *) d + n,
                         "%s{\"channel\":\"/bench/room/%d\","
                         "\"clientId\":\"%.*s\",\"data\":",
                         i ? "," : "", room, (int) from->id_len, from->id);
        }

        k = sprintf((char *) d + n, "{\"bt\":%llu,\"bp\":%d,\"bs\":%u,\"x\":\"",
                    (unsigned long long) stamp, p->index, p->seq);

        pad = bb_conf.size - k - 2;
        n += k;

        for ( /* void */ ; pad > 0; pad--) {
            d[n++] = 'x';
        }

        if (bb_conf.publish_via) {
            n += sprintf((char *) d + n, "\"}}");

        } else {
            n += sprintf((char *) d + n, "\"},\"id\":\"%u\"}", p->seq);
        }
    }

    if (bb_conf.publish_via == NULL || bb_conf.batch > 1) {
        d[n++] = ']';
    }

    p->busy = 1;
    p->room = room;
    p->nmsgs = bb_conf.batch;
    p->sent_at = now;

    if (bb_conf.publish_via) {
        n = (int) bb_http_post(&bb_req, bb_conf.publish_via, "",
                               p->conn.target, d, (size_t) n);

    } else {
        n = (int) bb_http_request(&bb_req, "", p->conn.target, d,
                                  (size_t) n);
    }

    (void) bb_conn_send(&p->conn, bb_req.data, (size_t) n);
}


static void
bb_publisher_handler(bb_conn_t *c, int status, u_char *body, size_t len)
{
    uint64_t         ok;
    bb_publisher_t  *p = c->data;

    p->busy = 0;

    ok = status == 200 ? bb_count(body, len, "\"successful\":true") : 0;

    if (ok > (uint64_t) p->nmsgs) {
        ok = (uint64_t) p->nmsgs;
    }

    if (ok < (uint64_t) p->nmsgs) {
        bb_stats.publish_failed += (uint64_t) p->nmsgs - ok;

        if (bb_stats.publish_failed <= 10) {
            bb_log("publish failed: HTTP %d: %.*s", status,
                   (int) (len > 200 ? 200 : len), body);
        }
    }

    bb_stats.published += ok;
    bb_stats.expected += ok * bb_room_subs[p->room];

    if (bb_stats.counting) {
        bb_stats.win_published += ok;
    }

    if (bb_publishing && bb_conf.rate == 0) {
        bb_publish(p, bb_now(), bb_now());
    }
}


/* handshake and rate: the same request over and over, no pipelining */

static void
bb_requester_open(bb_conn_t *c)
{
    size_t           n;
    bb_requester_t  *rq = c->data;

    if (rq->phase == BB_PH_HANDSHAKE) {
        n = bb_http_request(&bb_req, "/handshake", c->target, bb_handshake,
                            bb_handshake_len);
        (void) bb_conn_send(c, bb_req.data, n);
        return;
    }

    if (bb_sending && rq->phase != BB_PH_FAILED) {
        bb_requester_send(rq);
    }
}


static void
bb_requester_error(bb_conn_t *c)
{
    bb_stats.reconnects++;

    if (bb_stats.reconnects > 1000
        || bb_conn_open(c, c->target, NULL) != BB_OK)
    {
        bb_fatal("connection lost: %s", strerror(errno));
    }
}


static void
bb_requester_handler(bb_conn_t *c, int status, u_char *body, size_t len)
{
    uint64_t         now;
    bb_requester_t  *rq = c->data;

    if (rq->phase != 0 && rq->phase != BB_PH_CONNECT) {
        bb_service_handler(rq, status, body, len);
        return;
    }

    now = bb_now();

    if (bb_stats.counting) {
        bb_stats.win_responses++;
        bb_hist_add(&bb_stats.hist, now - rq->sent_at);

        if (status == 200) {
            bb_stats.win_ok++;

            if (memmem(body, len, "\"successful\":true", 17)) {
                bb_stats.win_bayeux_ok++;
            }
        }
    }

    if (status != 200) {
        bb_stats.errors++;

        if (bb_stats.errors <= 5) {
            bb_log("HTTP status %d: %.*s", status,
                   (int) (len > 200 ? 200 : len), body);
        }
    }

    if (bb_sending) {
        bb_requester_send(rq);
    }
}


/*
 * service: a session of its own for each connection (handshake, the first
 * connect), then remote calls back to back on the same connection
 */

static void
bb_service_handler(bb_requester_t *rq, int status, u_char *body,
    size_t len)
{
    int      n;
    size_t   id_len, size;
    u_char   id[64], buf[512];

    if (rq->phase == BB_PH_FAILED) {
        return;
    }

    if (status != 200) {
        goto failed;
    }

    switch (rq->phase) {

    case BB_PH_HANDSHAKE:
        if (bb_find_client_id(body, len, id, &id_len) != BB_OK) {
            goto failed;
        }

        rq->phase = BB_PH_CONNECT0;

        n = snprintf((char *) buf, sizeof(buf),
                     "[{\"channel\":\"/meta/connect\",\"clientId\":\"%.*s\","
                     "\"connectionType\":\"long-polling\","
                     "\"advice\":{\"timeout\":0},\"id\":\"2\"}]",
                     (int) id_len, id);

        size = bb_http_request(&bb_req, "/connect", rq->conn.target, buf,
                               (size_t) n);
        (void) bb_conn_send(&rq->conn, bb_req.data, size);

        /* the calls, built once: the same bytes go out every time */

        n = snprintf((char *) buf, sizeof(buf),
                     "[{\"channel\":\"%s\",\"clientId\":\"%.*s\","
                     "\"data\":{\"n\":%d},\"id\":\"3\"}]",
                     bb_conf.service, (int) id_len, id, rq->index);

        rq->request_len = bb_http_request(&bb_req, "", rq->conn.target,
                                          buf, (size_t) n);
        rq->request = malloc(rq->request_len);
        if (rq->request == NULL) {
            bb_fatal("out of memory");
        }

        memcpy(rq->request, bb_req.data, rq->request_len);
        return;

    case BB_PH_CONNECT0:
        if (memmem(body, len, "\"successful\":true", 17) == NULL) {
            goto failed;
        }

        rq->phase = BB_PH_CONNECT;
        bb_ready++;

        if (bb_sending) {
            bb_requester_send(rq);
        }

        return;

    default:
        return;
    }

failed:

    if (bb_failed < 5) {
        bb_log("session %d failed in phase %d: HTTP %d: %.*s", rq->index,
               rq->phase, status, (int) (len > 200 ? 200 : len), body);
    }

    rq->phase = BB_PH_FAILED;
    bb_failed++;
    bb_stats.errors++;
}


static void
bb_requester_send(bb_requester_t *rq)
{
    rq->sent_at = bb_now();
    (void) bb_conn_send(&rq->conn, rq->request, rq->request_len);
}


static size_t
bb_http_request(bb_buf_t *b, const char *suffix, int target,
    const u_char *body, size_t len)
{
    return bb_http_post(b, bb_conf.path, suffix, target, body, len);
}


static size_t
bb_http_post(bb_buf_t *b, const char *path, const char *suffix, int target,
    const u_char *body, size_t len)
{
    int  n;

    b->pos = 0;
    b->len = 0;

    if (bb_buf_reserve(b, len + 512) != BB_OK) {
        bb_fatal("out of memory");
    }

    n = snprintf((char *) b->data, 512,
                 "POST %s%s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Content-Type: application/json;charset=UTF-8\r\n"
                 "Content-Length: %zu\r\n"
                 "\r\n",
                 path, suffix, bb_net_target(target)->host, len);

    memcpy(b->data + n, body, len);

    return (size_t) n + len;
}


static size_t
bb_count(u_char *p, size_t len, const char *what)
{
    size_t   n, wlen;
    u_char  *last;

    n = 0;
    wlen = strlen(what);
    last = p + len;

    while ((p = memmem(p, (size_t) (last - p), what, wlen)) != NULL) {
        n++;
        p += wlen;
    }

    return n;
}


static int
bb_find_client_id(u_char *p, size_t len, u_char *id, size_t *id_len)
{
    u_char  *q, *end;

    q = memmem(p, len, "\"clientId\":\"", 12);
    if (q == NULL) {
        return BB_ERROR;
    }

    q += 12;
    end = memchr(q, '"', (size_t) (p + len - q));

    if (end == NULL || end == q || end - q >= 64) {
        return BB_ERROR;
    }

    memcpy(id, q, (size_t) (end - q));
    *id_len = (size_t) (end - q);

    return BB_OK;
}


static uint64_t
bb_number(u_char **pp, u_char *last)
{
    u_char    *p;
    uint64_t   v;

    v = 0;

    for (p = *pp; p < last && *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t) (*p - '0');
    }

    *pp = p;

    return v;
}


static uint32_t
bb_random(void)
{
    bb_rand_state ^= bb_rand_state << 13;
    bb_rand_state ^= bb_rand_state >> 17;
    bb_rand_state ^= bb_rand_state << 5;

    return bb_rand_state;
}


static int
scenario_rate(const char *suffix)
{
    int              i, n;
    double           secs, tool, server;
    uint64_t         t0, t1;
    bb_proc_t        p0, p1;
    bb_requester_t  *rq;

    n = bb_conf.connections > 0 ? bb_conf.connections : 64;

    bb_requesters = calloc((size_t) n, sizeof(bb_requester_t));
    if (bb_requesters == NULL) {
        bb_fatal("out of memory");
    }

    bb_sending = 1;

    for (i = 0; i < n; i++) {
        rq = &bb_requesters[i];

        rq->request_len = bb_http_request(&bb_req, suffix, i,
                                          bb_handshake,
                                          bb_handshake_len);
        rq->request = malloc(rq->request_len);
        if (rq->request == NULL) {
            bb_fatal("out of memory");
        }

        memcpy(rq->request, bb_req.data, rq->request_len);

        rq->conn.fd = -1;
        rq->conn.data = rq;
        rq->conn.handler = bb_requester_handler;
        rq->conn.open = bb_requester_open;
        rq->conn.error = bb_requester_error;

        if (bb_conn_open(&rq->conn, i, NULL) != BB_OK) {
            bb_fatal("connect() failed: %s", strerror(errno));
        }
    }

    bb_log("%s: %d connections, warmup %.1fs, %.1fs measured",
           bb_conf.scenario, n, bb_conf.warmup, bb_conf.duration);

    bb_loop(bb_now() + (uint64_t) (bb_conf.warmup * 1e6), NULL);

    bb_proc_read(bb_conf.pids, bb_conf.npids, &p0);
    tool = bb_self_cpu();
    t0 = bb_now();
    bb_stats.counting = 1;

    bb_loop(t0 + (uint64_t) (bb_conf.duration * 1e6), NULL);

    bb_stats.counting = 0;
    t1 = bb_now();
    tool = bb_self_cpu() - tool;
    bb_proc_read(bb_conf.pids, bb_conf.npids, &p1);
    bb_sending = 0;

    secs = (double) (t1 - t0) / 1e6;
    server = (double) (p1.cpu - p0.cpu) / (double) sysconf(_SC_CLK_TCK);

    bb_result_start();
    bb_result("connections", "%d", n);
    bb_result("seconds", "%.2f", secs);
    bb_result("responses", "%llu", (unsigned long long) bb_stats.win_responses);
    bb_result("ok", "%llu", (unsigned long long) bb_stats.win_ok);
    bb_result("bayeux_ok", "%llu",
              (unsigned long long) bb_stats.win_bayeux_ok);
    /* handshakes: only those that made a session (not a denial) */
    bb_result("rate", "%.0f",
              (double) (strcmp(bb_conf.scenario, "handshake") == 0
                        ? bb_stats.win_bayeux_ok : bb_stats.win_ok)
              / secs);
    bb_result("denied", "%llu", (unsigned long long)
              (bb_stats.win_ok - bb_stats.win_bayeux_ok));
    bb_result("p50_us", "%llu", (unsigned long long)
              bb_hist_percentile(&bb_stats.hist, 0.50));
    bb_result("p99_us", "%llu", (unsigned long long)
              bb_hist_percentile(&bb_stats.hist, 0.99));
    bb_result("errors", "%llu", (unsigned long long) bb_stats.errors);
    bb_result("reconnects", "%llu", (unsigned long long) bb_stats.reconnects);
    bb_result("tool_cpu", "%.0f", 100 * tool / secs);
    bb_result("server_cpu", "%.0f", 100 * server / secs);
    bb_result_end();

    return 0;
}


static int
bb_service_setup_done(void)
{
    return bb_ready + bb_failed == bb_nrequesters;
}


static int
scenario_service(void)
{
    int              i, n;
    double           secs, tool, server;
    uint64_t         t0, t1, start;
    bb_proc_t        p0, p1;
    bb_requester_t  *rq;

    n = bb_conf.connections > 0 ? bb_conf.connections : 64;

    bb_requesters = calloc((size_t) n, sizeof(bb_requester_t));
    if (bb_requesters == NULL) {
        bb_fatal("out of memory");
    }

    bb_nrequesters = n;

    for (i = 0; i < n; i++) {
        rq = &bb_requesters[i];

        rq->index = i;
        rq->phase = BB_PH_HANDSHAKE;
        rq->conn.fd = -1;
        rq->conn.data = rq;
        rq->conn.handler = bb_requester_handler;
        rq->conn.open = bb_requester_open;
        rq->conn.error = bb_requester_error;

        if (bb_conn_open(&rq->conn, i, NULL) != BB_OK) {
            bb_fatal("connect() failed: %s", strerror(errno));
        }
    }

    start = bb_now();

    bb_loop(start + (uint64_t) (bb_conf.setup_timeout * 1e6),
            bb_service_setup_done);

    bb_log("service: %d sessions ready, %d failed, in %.1fs", bb_ready,
           bb_failed, (double) (bb_now() - start) / 1e6);

    if (bb_ready == 0 || !bb_service_setup_done()) {
        bb_result_start();
        bb_result("error", "setup");
        bb_result("ready", "%d", bb_ready);
        bb_result("failed", "%d", bb_failed);
        bb_result_end();
        return 1;
    }

    bb_log("service: %d sessions call %s, warmup %.1fs, %.1fs measured",
           bb_ready, bb_conf.service, bb_conf.warmup, bb_conf.duration);

    bb_sending = 1;

    for (i = 0; i < n; i++) {
        if (bb_requesters[i].phase == BB_PH_CONNECT) {
            bb_requester_send(&bb_requesters[i]);
        }
    }

    bb_loop(bb_now() + (uint64_t) (bb_conf.warmup * 1e6), NULL);

    bb_proc_read(bb_conf.pids, bb_conf.npids, &p0);
    tool = bb_self_cpu();
    t0 = bb_now();
    bb_stats.counting = 1;

    bb_loop(t0 + (uint64_t) (bb_conf.duration * 1e6), NULL);

    bb_stats.counting = 0;
    t1 = bb_now();
    tool = bb_self_cpu() - tool;
    bb_proc_read(bb_conf.pids, bb_conf.npids, &p1);
    bb_sending = 0;

    secs = (double) (t1 - t0) / 1e6;
    server = (double) (p1.cpu - p0.cpu) / (double) sysconf(_SC_CLK_TCK);

    bb_result_start();
    bb_result("connections", "%d", bb_ready);
    bb_result("failed", "%d", bb_failed);
    bb_result("seconds", "%.2f", secs);
    bb_result("responses", "%llu", (unsigned long long) bb_stats.win_responses);
    bb_result("ok", "%llu", (unsigned long long) bb_stats.win_ok);
    bb_result("bayeux_ok", "%llu",
              (unsigned long long) bb_stats.win_bayeux_ok);
    /* calls answered "successful":true */
    bb_result("rate", "%.0f", (double) bb_stats.win_bayeux_ok / secs);
    bb_result("denied", "%llu", (unsigned long long)
              (bb_stats.win_ok - bb_stats.win_bayeux_ok));
    bb_result("p50_us", "%llu", (unsigned long long)
              bb_hist_percentile(&bb_stats.hist, 0.50));
    bb_result("p99_us", "%llu", (unsigned long long)
              bb_hist_percentile(&bb_stats.hist, 0.99));
    bb_result("errors", "%llu", (unsigned long long) bb_stats.errors);
    bb_result("reconnects", "%llu", (unsigned long long) bb_stats.reconnects);
    bb_result("tool_cpu", "%.0f", 100 * tool / secs);
    bb_result("server_cpu", "%.0f", 100 * server / secs);
    bb_result_end();

    return 0;
}


static void
bb_clients_create(int n, int with_rooms)
{
    int           i, j, k, r;
    bb_client_t  *cl;

    bb_clients = calloc((size_t) n, sizeof(bb_client_t));
    bb_room_subs = calloc((size_t) bb_conf.rooms, sizeof(uint64_t));

    if (bb_clients == NULL || bb_room_subs == NULL) {
        bb_fatal("out of memory");
    }

    bb_nclients = n;

    for (i = 0; i < n; i++) {
        cl = &bb_clients[i];
        cl->index = i;
        cl->conn.fd = -1;

        if (!with_rooms) {
            continue;
        }

        cl->nrooms = bb_conf.rooms_per_client;
        cl->rooms = calloc((size_t) cl->nrooms, sizeof(int));
        cl->last_seq = calloc((size_t) bb_conf.publishers, sizeof(uint32_t));

        if (cl->rooms == NULL || cl->last_seq == NULL) {
            bb_fatal("out of memory");
        }

        if (bb_conf.rooms == 1) {
            cl->rooms[0] = 0;
            continue;
        }

        /* K consecutive rooms are distinct as K is at most R */

        if (bb_conf.rooms_even) {
            for (j = 0; j < cl->nrooms; j++) {
                cl->rooms[j] = (int) (((uint64_t) i * (uint64_t) cl->nrooms
                                       + (uint64_t) j)
                                      % (uint64_t) bb_conf.rooms);
            }

            continue;
        }

        /* distinct rooms, chosen at random */

        for (j = 0; j < cl->nrooms; j++) {
            do {
                r = (int) (bb_random() % (uint32_t) bb_conf.rooms);

                for (k = 0; k < j; k++) {
                    if (cl->rooms[k] == r) {
                        break;
                    }
                }

            } while (k < j);

            cl->rooms[j] = r;
        }
    }
}


static int
bb_setup(const char *what)
{
    uint64_t  start;

    start = bb_now();

    bb_loop(start + (uint64_t) (bb_conf.setup_timeout * 1e6), bb_setup_done);

    bb_log("%s: %d sessions ready, %d failed, in %.1fs", what, bb_ready,
           bb_failed, (double) (bb_now() - start) / 1e6);

    if (!bb_setup_done() || bb_ready == 0) {
        bb_result_start();
        bb_result("error", "setup");
        bb_result("ready", "%d", bb_ready);
        bb_result("failed", "%d", bb_failed);
        bb_result_end();
        return BB_ERROR;
    }

    return BB_OK;
}


static int
scenario_publish(void)
{
    int              i, n, fanout;
    char             each[BB_MAX_PIDS * 8], *e;
    double           secs, tool, server, redis, drained;
    uint64_t         t0, t1, t2, subs;
    bb_proc_t        p0, p1, r0, r1, re0[BB_MAX_PIDS], re1[BB_MAX_PIDS];
    bb_publisher_t  *p;

    fanout = strcmp(bb_conf.scenario, "fanout") == 0;

    if (fanout) {
        bb_conf.rooms = 1;
        bb_conf.rooms_per_client = 1;
    }

    if (bb_conf.clients < 1) {
        bb_fatal("--clients is needed");
    }

    bb_clients_create(bb_conf.clients, 1);

    bb_npublishers = bb_conf.publishers;
    bb_publishers = calloc((size_t) bb_npublishers, sizeof(bb_publisher_t));
    if (bb_publishers == NULL) {
        bb_fatal("out of memory");
    }

    for (i = 0; i < bb_npublishers; i++) {
        bb_publishers[i].index = i;
        bb_publishers[i].conn.fd = -1;
    }

    bb_log("%s: %d %s subscribers, %d rooms, %d per client",
           bb_conf.scenario, bb_conf.clients,
           bb_conf.websocket ? "websocket" : "long-polling",
           bb_conf.rooms, bb_conf.rooms_per_client);

    if (bb_setup("subscribers") != BB_OK) {
        return 1;
    }

    if (fanout && bb_conf.publish_via == NULL) {
        /* publishers have sessions of their own, kept by a connect loop */

        bb_pub_sessions = calloc((size_t) bb_npublishers,
                                 sizeof(bb_client_t));
        if (bb_pub_sessions == NULL) {
            bb_fatal("out of memory");
        }

        for (i = 0; i < bb_npublishers; i++) {
            bb_pub_sessions[i].index = i;
            bb_pub_sessions[i].conn.fd = -1;
            bb_publishers[i].session = &bb_pub_sessions[i];
        }

    } else {
        for (i = 0; i < bb_npublishers; i++) {
            bb_publisher_start(&bb_publishers[i]);
        }
    }

    bb_loop(bb_now() + 30000000, bb_publishers_ready);

    if (!bb_publishers_ready()) {
        bb_result_start();
        bb_result("error", "publishers");
        bb_result_end();
        return 1;
    }

    for (subs = 0, i = 0; i < bb_conf.rooms; i++) {
        subs += bb_room_subs[i];
    }

    bb_log("publishing: %d publishers, %s, batches of %d, %d bytes",
           bb_npublishers, bb_conf.rate > 0 ? "fixed rate" : "full speed",
           bb_conf.batch, bb_conf.size);

    t0 = bb_now();

    if (bb_conf.rate > 0) {
        bb_interval = (uint64_t) (1e6 * bb_npublishers / bb_conf.rate);

        for (i = 0; i < bb_npublishers; i++) {
            p = &bb_publishers[i];
            p->due = t0 + bb_interval * (uint64_t) i
                          / (uint64_t) bb_npublishers;
        }
    }

    bb_publishing = 1;

    bb_loop(t0 + (uint64_t) (bb_conf.warmup * 1e6), NULL);

    bb_proc_read(bb_conf.pids, bb_conf.npids, &p0);
    bb_proc_read(bb_conf.redis_pids, bb_conf.nredis, &r0);

    for (i = 0; i < bb_conf.nredis; i++) {
        bb_proc_read(&bb_conf.redis_pids[i], 1, &re0[i]);
    }

    tool = bb_self_cpu();
    t1 = bb_now();
    bb_stats.counting = 1;

    bb_loop(t1 + (uint64_t) (bb_conf.duration * 1e6), NULL);

    bb_stats.counting = 0;
    t2 = bb_now();
    tool = bb_self_cpu() - tool;
    bb_proc_read(bb_conf.pids, bb_conf.npids, &p1);
    bb_proc_read(bb_conf.redis_pids, bb_conf.nredis, &r1);

    for (i = 0; i < bb_conf.nredis; i++) {
        bb_proc_read(&bb_conf.redis_pids[i], 1, &re1[i]);
    }

    bb_publishing = 0;

    bb_last_progress = bb_now();
    bb_last_delivered = bb_stats.delivered;
    bb_loop(t2 + (uint64_t) (bb_conf.drain * 1e6), bb_drained);
    drained = (double) (bb_now() - t2) / 1e6;

    secs = (double) (t2 - t1) / 1e6;
    server = (double) (p1.cpu - p0.cpu) / (double) sysconf(_SC_CLK_TCK);
    redis = (double) (r1.cpu - r0.cpu) / (double) sysconf(_SC_CLK_TCK);

    bb_result_start();
    bb_result("transport", "%s",
              bb_conf.websocket ? "websocket" : "long-polling");
    bb_result("subscribers", "%d", bb_ready);
    bb_result("failed", "%d", bb_failed);
    bb_result("rooms", "%d", bb_conf.rooms);
    bb_result("subscriptions", "%llu", (unsigned long long) subs);
    bb_result("publishers", "%d", bb_npublishers);
    bb_result("batch", "%d", bb_conf.batch);
    bb_result("size", "%d", bb_conf.size);
    bb_result("target_rate", "%.0f", bb_conf.rate * bb_conf.batch);
    bb_result("seconds", "%.2f", secs);
    bb_result("published", "%llu",
              (unsigned long long) bb_stats.win_published);
    bb_result("publish_rate", "%.0f",
              (double) bb_stats.win_published / secs);
    bb_result("delivered", "%llu",
              (unsigned long long) bb_stats.win_delivered);
    bb_result("rate", "%.0f", (double) bb_stats.win_delivered / secs);
    bb_result("p50_us", "%llu", (unsigned long long)
              bb_hist_percentile(&bb_stats.hist, 0.50));
    bb_result("p99_us", "%llu", (unsigned long long)
              bb_hist_percentile(&bb_stats.hist, 0.99));
    bb_result("p999_us", "%llu", (unsigned long long)
              bb_hist_percentile(&bb_stats.hist, 0.999));
    bb_result("max_us", "%llu", (unsigned long long) bb_stats.hist.max);
    bb_result("total_published", "%llu",
              (unsigned long long) bb_stats.published);
    bb_result("total_expected", "%llu",
              (unsigned long long) bb_stats.expected);
    bb_result("total_delivered", "%llu",
              (unsigned long long) bb_stats.delivered);
    bb_result("lost", "%lld", (long long) (bb_stats.expected
                                           - bb_stats.delivered));
    bb_result("drain_seconds", "%.1f", drained);
    bb_result("publish_failed", "%llu",
              (unsigned long long) bb_stats.publish_failed);
    bb_result("out_of_order", "%llu",
              (unsigned long long) bb_stats.out_of_order);
    bb_result("late_sends", "%llu", (unsigned long long) bb_stats.late);
    bb_result("connects", "%llu", (unsigned long long) bb_stats.connects);
    bb_result("errors", "%llu", (unsigned long long) bb_stats.errors);
    bb_result("reconnects", "%llu", (unsigned long long) bb_stats.reconnects);
    bb_result("tool_cpu", "%.0f", 100 * tool / secs);
    bb_result("server_cpu", "%.0f", 100 * server / secs);

    if (bb_conf.nredis) {
        bb_result("redis_cpu", "%.0f", 100 * redis / secs);

        /* Redis's cost per delivery, whatever the delivery rate */
        bb_result("redis_cpu_ms", "%.0f", 1000 * redis);

        if (bb_stats.win_delivered) {
            bb_result("redis_ms_per_1000", "%.3f",
                      1e6 * redis / (double) bb_stats.win_delivered);
        }

        /* several Redis servers (a Cluster's primaries): how evenly */

        e = each;
        each[0] = '\0';

        for (i = 0; i < bb_conf.nredis; i++) {
            n = snprintf(e, (size_t) (each + sizeof(each) - e), "%s%.0f",
                         i ? "/" : "",
                         100 * (double) (re1[i].cpu - re0[i].cpu)
                         / (double) sysconf(_SC_CLK_TCK) / secs);

            if (n < 0 || n >= each + sizeof(each) - e) {
                break;
            }

            e += n;
        }

        bb_result("redis_cpu_each", "%s", each);
    }

    bb_result_end();

    return 0;
}


static int
scenario_idle(void)
{
    double     per, per_redis;
    uint64_t   start;
    bb_proc_t  p0, p1, r0, r1;

    if (bb_conf.clients < 1) {
        bb_fatal("--clients is needed");
    }

    bb_conf.rooms = 100;
    bb_conf.rooms_per_client = 1;

    bb_clients_create(bb_conf.clients, 1);

    bb_proc_read(bb_conf.pids, bb_conf.npids, &p0);
    bb_proc_read(bb_conf.redis_pids, bb_conf.nredis, &r0);

    bb_log("idle: %d %s sessions, one subscription each", bb_conf.clients,
           bb_conf.websocket ? "websocket" : "long-polling");

    if (bb_setup("idle") != BB_OK) {
        return 1;
    }

    start = bb_now();
    bb_loop(start + (uint64_t) (bb_conf.settle * 1e6), NULL);

    bb_proc_read(bb_conf.pids, bb_conf.npids, &p1);
    bb_proc_read(bb_conf.redis_pids, bb_conf.nredis, &r1);

    per = ((double) p1.rss - (double) p0.rss) * 1024 / bb_ready;
    per_redis = ((double) r1.rss - (double) r0.rss) * 1024 / bb_ready;

    bb_result_start();
    bb_result("transport", "%s",
              bb_conf.websocket ? "websocket" : "long-polling");
    bb_result("sessions", "%d", bb_ready);
    bb_result("failed", "%d", bb_failed);
    bb_result("rss_before_kb", "%llu", (unsigned long long) p0.rss);
    bb_result("rss_after_kb", "%llu", (unsigned long long) p1.rss);
    bb_result("bytes_per_session", "%.0f", per);

    if (bb_conf.nredis) {
        bb_result("redis_rss_before_kb", "%llu",
                  (unsigned long long) r0.rss);
        bb_result("redis_rss_after_kb", "%llu",
                  (unsigned long long) r1.rss);
        bb_result("redis_bytes_per_session", "%.0f", per_redis);
    }

    bb_result("connects", "%llu", (unsigned long long) bb_stats.connects);
    bb_result("errors", "%llu", (unsigned long long) bb_stats.errors);
    bb_result_end();

    return 0;
}


/* CPU time (clock ticks) and resident memory (kB) of processes */

static void
bb_proc_read(pid_t *pids, int n, bb_proc_t *p)
{
    int                 i, f, fd;
    char                path[64], buf[4096], *s, *e;
    ssize_t             len;
    unsigned long long  v;

    p->cpu = 0;
    p->rss = 0;

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pids[i]);

        fd = open(path, O_RDONLY);
        if (fd == -1) {
            bb_fatal("process %d: %s", (int) pids[i], strerror(errno));
        }

        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);

        if (len <= 0) {
            continue;
        }

        buf[len] = '\0';

        /* after the command name: state is field 3, utime 14, stime 15 */

        s = strrchr(buf, ')');

        for (f = 2; s && f < 14; f++) {
            s = strchr(s + 1, ' ');
        }

        if (s) {
            v = strtoull(s + 1, &e, 10);
            p->cpu += v;
            p->cpu += strtoull(e, NULL, 10);
        }

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pids[i]);

        fd = open(path, O_RDONLY);
        if (fd == -1) {
            continue;
        }

        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);

        if (len <= 0) {
            continue;
        }

        buf[len] = '\0';

        s = strstr(buf, "VmRSS:");
        if (s) {
            p->rss += strtoull(s + 6, NULL, 10);
        }
    }
}


static double
bb_self_cpu(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);

    return (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}


static void
bb_result_start(void)
{
    printf("result scenario=%s", bb_conf.scenario);

    if (bb_conf.label[0]) {
        printf(" label=%s", bb_conf.label);
    }
}


static void
bb_result(const char *key, const char *fmt, ...)
{
    va_list  args;

    printf(" %s=", key);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
}


static void
bb_result_end(void)
{
    printf("\n");
    fflush(stdout);
}


static void
bb_log(const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "bayeux-bench: ");

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fprintf(stderr, "\n");
}
