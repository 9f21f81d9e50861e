# Batched script calls: the parked connects named by one notification
# are taken by one script call ("tb"), and the connects of one event loop
# iteration go in one call ("cb").  Each session is answered as if alone:
# a connect that went away while the batch was in flight has its messages
# put back, and its next connect gets them.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use JSON::PP;
use Time::HiRes qw(time sleep);

my $redis = start_redis();

sub server {
    return Test::Nginx::Bayeux::Server->new(
        http_config => $redis->engine_conf(command_timeout => '10s'),
        config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_max_queue 0;
        bayeux_max_queue_size 0;
    }
CONF
        @_,
    )->start;
}

sub subscribers {
    my ($server, $channel, $n) = @_;
    my @s;
    for (1 .. $n) {
        my $s = $server->client;
        $s->handshake;
        $s->subscribe($channel);
        $s->connect;
        push @s, $s;
    }
    return @s;
}

sub evalsha_calls {
    my ($stats) = $redis->cmd('INFO', 'commandstats')
                  =~ /cmdstat_evalsha:calls=(\d+)/;
    return $stats // 0;
}

# one publish to 20 connects parked on one worker: one take for all
{
    my $server = server();
    my @s = subscribers($server, '/many', 20);
    my $p = $server->client;
    $p->handshake;

    my @h = map { $_->connect_start } @s;
    sleep 0.3;
    $redis->cmd('CONFIG', 'RESETSTAT');

    ok($p->publish('/many', 'to all')->{successful}, 'publish to 20 parked');

    my $all = 1;
    for my $i (0 .. $#s) {
        my $r = $s[$i]->connect_finish($h[$i], timeout => 5);
        my @d = map { $_->{data} } @{ $r->{deliveries} };
        $all = 0 unless @d == 1 && $d[0] eq 'to all';
    }
    ok($all, 'each of the 20 got the message exactly once');

    # the publish, one take for the 20, maybe the refresh of the tick
    my $calls = evalsha_calls();
    ok($calls >= 2 && $calls <= 4, "20 sessions woken by $calls script calls");

    # the 20 connect again at once: few calls, and nothing is lost
    $redis->cmd('CONFIG', 'RESETSTAT');
    @h = map { $_->connect_start } @s;
    sleep 0.3;
    ok($p->publish('/many', 'again')->{successful}, 'a second publish');
    $all = 1;
    for my $i (0 .. $#s) {
        my $r = $s[$i]->connect_finish($h[$i], timeout => 5);
        my @d = map { $_->{data} } @{ $r->{deliveries} };
        $all = 0 unless @d == 1 && $d[0] eq 'again';
    }
    ok($all, '... each got it exactly once');

    $server->stop;
    unlike($server->error_log_text, qr/\[(alert|crit|emerg|error)\]/,
           'no error in the log');
}

# connects that went away while the batched take was in flight
{
    my $n = 8;
    my $server = server(log_level => 'debug');
    my @s = subscribers($server, '/gone', $n);
    my $p = $server->client;
    $p->handshake;

    # a message as the module keeps it, the template of the next ones
    # (the sessions are held since their first connect: it is logged)
    ok($p->publish('/gone', 'zero')->{successful}, 'a first message, logged');
    my ($entry) = @{ $redis->cmd('ZRANGE', 'bayeux:l:/gone', -1, -1) };
    my $tmpl = defined $entry ? (split /\n/, $entry, 2)[1] : undef;
    ok(defined $tmpl, '... found in the log of /gone');
    for my $s (@s) {
        my @d = map { $_->{data} } @{ $s->connect(timeout => 5)->{deliveries} };
        is_deeply(\@d, ['zero'], '... and taken by the next connect');
    }

    my @h = map { $_->connect_start } @s;
    sleep 0.3;

    my (@ids, @notify, $worker);
    for my $s (@s) {
        my ($w, $t) = @{ $redis->cmd('HMGET', 'bayeux:s:' . $s->client_id,
                                     'w', 't') };
        $worker //= $w;
        push @ids, $s->client_id;
        push @notify, $s->client_id, $t;
    }
    ok($worker && !grep({ !defined } @notify), "$n connects parked");

    my $msg = decode_json($tmpl);
    $msg->{data} = 'late';
    $msg->{id} = 'late-1';

    # queue the message and notify the worker as a publish does, then
    # pause scripts in the same read, so that the take waits in Redis
    my $script = <<'LUA';
for i = 3, #ARGV do redis.call('RPUSH', 'bayeux:q:' .. ARGV[i], ARGV[1]) end
return redis.call('PUBLISH', ARGV[2], table.concat(KEYS, ' '))
LUA
    my @eval = ('EVAL', $script, scalar(@notify), @notify,
                encode_json($msg), $worker, @ids);
    my @pause = ('CLIENT', 'PAUSE', '1500', 'WRITE');
    my $req = '';
    for my $c (\@eval, \@pause) {
        $req .= '*' . @$c . "\r\n";
        $req .= '$' . length($_) . "\r\n$_\r\n" for @$c;
    }
    my $sock = $redis->_sock;
    print $sock $req;
    is($redis->_reply(time + 5), 1, 'the worker was notified');
    is($redis->_reply(time + 5), 'OK', 'Redis pauses scripts');

    # half of the clients go away while their take waits
    sleep 0.4;
    $s[$_]->abandon($h[$_]) for 0 .. $n / 2 - 1;

    my $all = 1;
    for my $i ($n / 2 .. $n - 1) {
        my $r = $s[$i]->connect_finish($h[$i], timeout => 5);
        my @d = map { $_->{data} } @{ $r->{deliveries} };
        $all = 0 unless @d == 1 && $d[0] eq 'late';
    }
    ok($all, 'the connects still there got the message once');

    ok($server->wait_for_log(qr/messages put back/, timeout => 5),
       'the messages taken for the gone connects were put back');

    $all = 1;
    for my $i (0 .. $n / 2 - 1) {
        my $r = $s[$i]->connect(advice => { timeout => 0 }, timeout => 5);
        my @d = map { $_->{data} } @{ $r->{deliveries} };
        $all = 0 unless @d == 1 && $d[0] eq 'late';
    }
    ok($all, 'the next connect of each gone one gets it, once');

    my @left = grep { $redis->cmd('LLEN', "bayeux:q:$_") } @ids;
    is(scalar @left, 0, 'no queue is left over');

    $server->stop;
    unlike($server->error_log_text, qr/\[(alert|crit|emerg|error)\]/,
           'no error in the log');
}

done_testing();
