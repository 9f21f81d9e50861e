# The Redis engine and its hiredis adapter in detail: replies far larger
# than one read (16 KiB) under edge-triggered epoll, the script cache
# flushed under it (NOSCRIPT), a password, a database number, key
# prefixes that keep two endpoints apart, and messages taken for a
# connect whose client went away meanwhile put back, in order.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Time::HiRes qw(time sleep);

my $redis = start_redis();

sub server {
    my (%o) = @_;
    my $engine = delete $o{engine} // $redis->engine_conf;
    my $more = delete $o{more} // '';
    return Test::Nginx::Bayeux::Server->new(
        http_config => $engine,
        config => <<"CONF",
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_max_queue 0;
        bayeux_max_queue_size 0;
        $more
    }
CONF
        %o,
    )->start;
}

sub clients {
    my ($server, $channel) = @_;
    my $s = $server->client;
    $s->handshake;
    $s->subscribe($channel);
    $s->connect;
    my $p = $server->client;
    $p->handshake;
    return ($s, $p);
}

{
    my $server = server();
    my ($s, $p) = clients($server, '/big');

    # a parked connect woken by one message of 300 KB
    my $big = join '', map { chr(97 + $_ % 26) } 1 .. 300_000;
    my $h = $s->connect_start;
    sleep 0.1;
    ok($p->publish('/big', $big)->{successful}, 'a 300 KB message');
    my $r = $s->connect_finish($h, timeout => 5);
    is(length($r->{deliveries}[0]{data} // ''), 300_000,
       'delivered whole through a parked connect');
    ok(($r->{deliveries}[0]{data} // '') eq $big, '... byte for byte');

    # 400 messages queued (2.4 MB), taken in one reply by one connect
    my @sent = map { sprintf('%05d', $_) . ('x' x 6000) } 1 .. 400;
    my @batch;
    for my $i (0 .. $#sent) {
        push @batch, { channel => '/big', clientId => $p->client_id,
                       data => $sent[$i] };
        if (@batch == 50) {
            my $res = $p->post('/', [ @batch ]);
            is($res->status, 200, 'a batch of 50 publishes');
            @batch = ();
        }
    }
    $r = $s->connect(timeout => 10);
    my @got = map { $_->{data} } @{ $r->{deliveries} };
    is(scalar @got, 400, 'one connect took all 400 queued messages (2.4 MB)');
    ok(join('', @got) eq join('', @sent), '... intact and in order');

    # the script cache is flushed under the engine
    $redis->cmd('SCRIPT', 'FLUSH');
    $h = $s->connect_start;
    sleep 0.1;
    ok($p->publish('/big', 'after flush')->{successful},
       'a publish after SCRIPT FLUSH (NOSCRIPT, then EVAL)');
    $r = $s->connect_finish($h, timeout => 5);
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], ['after flush'],
              '... delivered');
    is($redis->cmd('SCRIPT', 'EXISTS',
                   $redis->cmd('SCRIPT', 'LOAD', 'return 1'))->[0], 1,
       '(the Redis is scriptable)');

    $server->stop;
    unlike($server->error_log_text, qr/\[(alert|crit|emerg|error)\]/,
           'no error in the log');
}

# messages taken for a connect whose client went away are put back (its
# session not held: a lazy message not yet due waits in its queue, and
# the connect parks without holding it; t/redis/150-held-polling.t has
# the held ones)
{
    my $server = server(
        engine => $redis->engine_conf(command_timeout => '10s'),
        more => "bayeux_lazy_channel /back/lazy;\n"
                . "        bayeux_max_lazy_timeout 60s;",
        log_level => 'debug');
    my ($s, $p) = clients($server, '/back');
    ok($s->subscribe('/back/lazy')->{successful}, 'subscribed to /back/lazy');

    my $h = $s->connect_start(advice => { timeout => 1000 });
    sleep 0.3;
    ok($p->publish('/back/lazy', 'lazy')->{successful}, 'a lazy message');
    ok(until_true(sub { !$redis->is_held($s->client_id, '/back') }, 0.5),
       '... lets the session go: the connect stays parked, not held');
    # Redis stops: the publish and, at the end of the hold, the take of the
    # parked connect wait in Redis's socket, in this order
    $redis->pause;
    my $ph = $p->post_start('/', [ { channel => '/back',
                                     clientId => $p->client_id,
                                     data => 'one' },
                                   { channel => '/back',
                                     clientId => $p->client_id,
                                     data => 'two' } ]);
    sleep 1.2;
    # the client goes away while the take is in flight
    $s->abandon($h);
    sleep 0.3;
    $redis->resume;
    my $pr = $p->post_finish($ph, timeout => 10);
    is($pr->status, 200, 'the publishes went through once Redis resumed');
    ok($server->wait_for_log(qr/messages put back/, timeout => 5),
       'the messages taken for the gone connect were put back');
    my $r = $s->connect(advice => { timeout => 0 }, timeout => 5);
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ],
              [ 'lazy', 'one', 'two' ],
              'the next connect gets them, in order, after the lazy one');
    $server->stop;
}

# a password and a database
{
    my $secure = start_redis(args => [ '--requirepass', 's3cr3t' ],
                             password => 's3cr3t');
    my $server = server(engine => $secure->engine_conf(db => 3));
    my ($s, $p) = clients($server, '/auth');
    ok($p->publish('/auth', 'ok')->{successful},
       'publish with a password and database 3');
    is_deeply([ map { $_->{data} } @{ $s->wait_deliveries } ], ['ok'],
              '... delivered');
    ok(scalar($secure->scan('bayeux:s:*', 3)), 'the keys are in database 3');
    is_deeply([ $secure->scan('bayeux:*', 0) ], [], 'none in database 0');
    $server->stop;

    my $wrong = server(engine => "bayeux_engine redis;\n"
                                 . "bayeux_redis_url redis://:wrong\@127.0.0.1:"
                                 . $secure->port . "/0;\n");
    my $c = $wrong->client;
    my $h = $c->handshake;
    is($h->{error}, '503::engine_unavailable', 'a wrong password: 503');
    $wrong->stop;
    like($wrong->error_log_text,
         qr/is unavailable \((WRONGPASS|ERR invalid password)/,
         'the log says why');
    unlike($wrong->error_log_text, qr/wrong/, 'but not the password');
}

# an idle worker keeps its connection alive, even with Redis's "timeout"
{
    my $strict = start_redis(args => [ '--timeout', '1' ]);
    my $server = Test::Nginx::Bayeux::Server->new(
        http_config => $strict->engine_conf,
        config => <<'CONF',
    location /cometd { bayeux; bayeux_max_interval 1500ms; }
CONF
    )->start;
    my $c = $server->client;
    ok($c->handshake->{successful}, 'timeout 1: handshake');
    sleep 3;
    ok($c->handshake->{successful}, 'timeout 1: handshake after 3 s idle');
    $server->stop;
    unlike($server->error_log_text, qr/is unavailable/,
           'timeout 1: the idle connection was never closed by Redis');
}

# two endpoints with their own prefixes on one Redis do not meet
{
    my $server = Test::Nginx::Bayeux::Server->new(
        http_config => $redis->engine_conf,
        config => <<'CONF',
    location /one { bayeux; bayeux_redis_prefix "one:"; bayeux_timeout 2s; }
    location /two { bayeux; bayeux_redis_prefix "two:"; bayeux_timeout 2s; }
CONF
    )->start;
    my (@s, @p);
    for my $path ('/one', '/two') {
        my $s = $server->client(path => $path);
        $s->handshake;
        $s->subscribe('/same');
        $s->connect;
        my $p = $server->client(path => $path);
        $p->handshake;
        push @s, $s;
        push @p, $p;
    }
    $p[0]->publish('/same', 'for one');
    $p[1]->publish('/same', 'for two');
    is_deeply([ map { $_->{data} } @{ $s[0]->wait_deliveries(timeout => 3) } ],
              ['for one'], '/one gets only its message');
    is_deeply([ map { $_->{data} } @{ $s[1]->wait_deliveries(timeout => 3) } ],
              ['for two'], '/two gets only its message');
    my $other = $server->client(path => '/two',
                                cookie_jar => $s[0]->cookie_jar);
    $other->client_id($s[0]->client_id);
    is($other->connect(advice => { timeout => 0 })->{reply}{error},
       '402::session_unknown', 'a session of /one is unknown to /two');
    ok(scalar($redis->scan('one:s:*')) && scalar($redis->scan('two:s:*')),
       'keys under both prefixes');
    $server->stop;
}

done_testing();
