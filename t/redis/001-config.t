# The Redis engine's directives: what `nginx -t` refuses, naming the
# directive; several workers are fine; without a Redis, requests get
# "503::engine_unavailable" with retry advice, at once.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';
use Test::Nginx::Bayeux;

# a port where nothing listens
our $DEAD_PORT = Test::Nginx::Bayeux::Server::free_port();

run_tests();

__DATA__

=== TEST 1: every redis directive, at every level; several workers
--- skip_valgrind: valgrind runs nginx as one process
--- workers: 4
--- http_config
    bayeux_engine redis;
    bayeux_redis_url redis://127.0.0.1:1/0;
    bayeux_redis_prefix "app1:";
--- config
    bayeux_redis_connect_timeout 500ms;
    location /cometd {
        bayeux;
        bayeux_redis_url redis://:secret@localhost:6390/3;
        bayeux_redis_command_timeout 2s;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "error":"503::engine_unavailable".*"reconnect":"retry"
--- error_log
bayeux: redis localhost:6390 of location "/cometd" is unavailable
--- no_error_log
[alert]
[emerg]



=== TEST 2: the URL must be a redis:// URL
--- http_config
    bayeux_engine redis;
--- config
    location /cometd { bayeux; bayeux_redis_url http://127.0.0.1:6379/; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: it must start with "redis://"



=== TEST 3: a bad port
--- config
    location /cometd { bayeux; bayeux_redis_url redis://127.0.0.1:http/0; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: invalid port



=== TEST 4: a bad database
--- config
    location /cometd { bayeux; bayeux_redis_url redis://127.0.0.1:6379/two; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: the database must be a number



=== TEST 5: a host that does not resolve
--- config
    location /cometd { bayeux; bayeux_redis_url redis://no-such-host.invalid/0; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: host not found



=== TEST 6: a password without ":"; the password is not repeated
--- config
    location /cometd { bayeux; bayeux_redis_url redis://hunter2@127.0.0.1/0; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: the password must follow a ":"
--- no_error_log
hunter2



=== TEST 7: no host
--- config
    location /cometd { bayeux; bayeux_redis_url redis://:pw@/0; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: it has no host



=== TEST 8: timeouts must be positive
--- config
    location /cometd { bayeux; bayeux_redis_connect_timeout 0; }
--- must_die
--- error_log
"bayeux_redis_connect_timeout" directive must be greater than 0



=== TEST 9: timeouts are times
--- config
    location /cometd { bayeux; bayeux_redis_command_timeout soon; }
--- must_die
--- error_log
"bayeux_redis_command_timeout" directive invalid value



=== TEST 10: the directives take one argument
--- config
    location /cometd { bayeux; bayeux_redis_prefix a b; }
--- must_die
--- error_log
invalid number of arguments in "bayeux_redis_prefix" directive



=== TEST 11: unknown engine: the message lists redis
--- config
    location /cometd { bayeux; bayeux_engine mongo; }
--- must_die
--- error_log
unknown bayeux engine "mongo"; this build has: memory, redis



=== TEST 12: no Redis: an error with retry advice, quickly, and one log line
--- http_config eval
"bayeux_engine redis;\nbayeux_redis_url redis://127.0.0.1:$main::DEAD_PORT/0;\n"
--- config
    location /cometd { bayeux; }
--- bayeux
my $c = client();
for my $i (1 .. 5) {
    my $t0 = time;
    my $r = $c->handshake;
    ok($r && !$r->{successful}
       && $r->{error} eq '503::engine_unavailable'
       && $r->{advice}{reconnect} eq 'retry',
       "handshake $i: 503::engine_unavailable, reconnect: retry");
    cmp_ok(time - $t0, '<', 1.5, "handshake $i: answered at once");
    sleep 0.3;
}
my @lines = grep { /is unavailable/ } split /\n/, $server->error_log_text;
is(scalar @lines, 1, 'the outage is logged once, not per request');
--- no_error_log
[alert]



=== TEST 13: a unix socket's path must be absolute
--- config
    location /cometd { bayeux; bayeux_redis_url unix:redis.sock; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: the socket's path must be absolute



=== TEST 14: a unix socket takes db, user and password only
--- config
    location /cometd { bayeux; bayeux_redis_url unix:/run/redis.sock?database=1; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: a parameter of a unix socket must be "db=", "user=" or "password="



=== TEST 15: a unix socket's database is a number
--- config
    location /cometd { bayeux; bayeux_redis_url unix:/run/redis.sock?db=x; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: the database must be a number



=== TEST 16: a unix socket is not written redis://unix:
--- config
    location /cometd { bayeux; bayeux_redis_url redis://unix:/run/redis.sock; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: a unix socket is written "unix:/path/to/redis.sock"



=== TEST 17: Sentinel: a master name is needed
--- config
    location /cometd { bayeux; bayeux_redis_url redis+sentinel://127.0.0.1:26379; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: it has no master name, as in "redis+sentinel://host:26379/mymaster"



=== TEST 17a: Sentinel: an empty master name is none
--- config
    location /cometd { bayeux; bayeux_redis_url redis+sentinel://127.0.0.1:26379//0; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: it has no master name



=== TEST 17b: Sentinel: a host is needed
--- config
    location /cometd { bayeux; bayeux_redis_url redis+sentinel://:secret@/mymaster; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: it has no sentinel host



=== TEST 17c: Sentinel: an empty host in the list
--- config
    location /cometd { bayeux; bayeux_redis_url redis+sentinel://127.0.0.1:26379,,127.0.0.1:26380/mymaster; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: a sentinel host is empty



=== TEST 17d: Sentinel: a bad port
--- config
    location /cometd { bayeux; bayeux_redis_url redis+sentinel://127.0.0.1:26379,127.0.0.1:99999/mymaster; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: invalid port



=== TEST 17e: Sentinel: the database must be a number
--- config
    location /cometd { bayeux; bayeux_redis_url redis+sentinel://127.0.0.1/mymaster/x; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: the database must be a number



=== TEST 17f: Sentinel: no sentinel answers: 503, the log says which sentinel failed and why
--- http_config eval
"bayeux_engine redis;\nbayeux_redis_url redis+sentinel://:pw\@127.0.0.1:$main::DEAD_PORT/mymaster/2;\n"
--- config
    location /cometd { bayeux; }
--- bayeux
my $c = client();
my $r = $c->handshake;
ok($r && !$r->{successful} && $r->{error} eq '503::engine_unavailable',
   '503::engine_unavailable');
my @lines = grep { /is unavailable/ } split /\n/, $server->error_log_text;
is(scalar @lines, 1, 'one line');
like($lines[0], qr/redis master "mymaster" of location "\/cometd" is unavailable \(sentinel 127\.0\.0\.1:$main::DEAD_PORT: connect\(\) failed/,
     'which sentinel, and why');
unlike($lines[0], qr/pw/, 'not the password');
--- no_error_log
[alert]



=== TEST 18: Redis Cluster: the seed nodes are accepted
--- config
    location /cometd { bayeux; bayeux_engine redis; bayeux_redis_url redis+cluster://127.0.0.1:7000,127.0.0.1:7001; }
--- request
GET /nowhere
--- error_code: 404



=== TEST 18a: Redis Cluster: no database but 0
--- config
    location /cometd { bayeux; bayeux_redis_url redis+cluster://127.0.0.1:7000/1; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: Redis Cluster has database 0 only: a redis+cluster:// address takes no database



=== TEST 18b: Redis Cluster: a node is needed, none may be empty
--- config
    location /cometd { bayeux; bayeux_redis_url redis+cluster://127.0.0.1:7000,,127.0.0.1:7001; }
--- must_die
--- error_log
"bayeux_redis_url" directive is invalid: a cluster node is empty



=== TEST 18c: Redis Cluster: no node answers: 503, the log says which node failed and why, not the password
--- http_config eval
"bayeux_engine redis;\nbayeux_redis_url redis+cluster://:pw\@127.0.0.1:$main::DEAD_PORT;\n"
--- config
    location /cometd { bayeux; }
--- bayeux
my $c = client();
my $r = $c->handshake;
ok($r && !$r->{successful} && $r->{error} eq '503::engine_unavailable',
   '503::engine_unavailable');
my @lines = grep { /is unavailable/ } split /\n/, $server->error_log_text;
is(scalar @lines, 1, 'one line');
like($lines[0], qr/redis cluster slot \d+ of location "\/cometd" is unavailable \(cluster node 127\.0\.0\.1:$main::DEAD_PORT: connect\(\) failed/,
     'which node, and why');
unlike($lines[0], qr/pw/, 'not the password');
--- no_error_log
[alert]



=== TEST 19: rediss://: a certificate without its key
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_url rediss://127.0.0.1:6380/0;
        bayeux_redis_ssl_certificate /etc/ssl/certs/ssl-cert-snakeoil.pem;
    }
--- must_die
--- error_log
no "bayeux_redis_ssl_certificate_key" is defined for certificate "/etc/ssl/certs/ssl-cert-snakeoil.pem"



=== TEST 20: rediss://: verification without a CA to verify with
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_url rediss://127.0.0.1:6380/0;
        bayeux_redis_ssl_verify on;
    }
--- must_die
--- error_log
no "bayeux_redis_ssl_trusted_certificate" is defined for "bayeux_redis_ssl_verify"



=== TEST 21: rediss://: a file that cannot be read
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_url rediss://127.0.0.1:6380/0;
        bayeux_redis_ssl_verify on;
        bayeux_redis_ssl_trusted_certificate /nonexistent/ca.crt;
    }
--- must_die
--- error_log
/nonexistent/ca.crt



=== TEST 22: rediss://: the protocols are nginx's names
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_url rediss://127.0.0.1:6380/0;
        bayeux_redis_ssl_protocols TLSv1.4;
    }
--- must_die
--- error_log
invalid value "TLSv1.4"



=== TEST 23: bayeux_redis_shards: 1 to 64
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_shards 0;
    }
--- must_die
--- error_log
"bayeux_redis_shards" directive must be between 1 and 64



=== TEST 24: bayeux_redis_shards: not more than 64
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_shards 65;
    }
--- must_die
--- error_log
"bayeux_redis_shards" directive must be between 1 and 64



=== TEST 25: bayeux_redis_shards: not a number
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_shards three;
    }
--- must_die
--- error_log
"bayeux_redis_shards" directive invalid number



=== TEST 26: shards without a Redis: 503 at once, the log names each shard
--- http_config eval
"bayeux_engine redis;\nbayeux_redis_url redis://127.0.0.1:$main::DEAD_PORT/0;\n"
. "bayeux_redis_shards 4;\n"
--- config
    location /cometd { bayeux; }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "error":"503::engine_unavailable".*"reconnect":"retry"
--- error_log
(shard 0) of location "/cometd" is unavailable
(shard 3) of location "/cometd" is unavailable
--- no_error_log
[alert]
[emerg]
