# Limits on subscriptions: channels per (un)subscribe message
# (bayeux_max_channels), subscriptions per session
# (bayeux_max_subscriptions), and the cost of a large subscribe.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
    }
CONF

run_tests();


# a message on one channel: whether the session got it
sub got_on {
    my ($pub, $sub, $channel) = @_;
    $pub->publish($channel, $channel);
    my $r = $sub->connect(advice => { timeout => 0 });
    $sub->deliveries;
    return scalar grep { $_->{channel} eq $channel } @{ $r->{deliveries} };
}

__DATA__

=== TEST 1: too many channels in one message: refused whole, the batch goes on
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_channels 3;
    }
--- bayeux
my $a = client();
$a->handshake;
$a->connect;
my $cid = $a->client_id;
my $res = $a->post('/', [
    { channel => '/meta/subscribe', clientId => $cid, id => 's1',
      subscription => [ '/a', '/b', '/c', '/d' ] },
    { channel => '/meta/subscribe', clientId => $cid, id => 's2',
      subscription => [ '/a', '/b', '/c' ] },
    { channel => '/meta/unsubscribe', clientId => $cid, id => 'u1',
      subscription => [ '/a', '/b', '/c', '/d' ] },
]);
is($res->status, 200, 'status');
is_deeply($res->{messages}, [
    { id => 's1', channel => '/meta/subscribe',
      successful => JSON::PP::false, error => '400::too_many_channels',
      clientId => $cid, subscription => [ '/a', '/b', '/c', '/d' ] },
    { id => 's2', channel => '/meta/subscribe',
      successful => JSON::PP::true, clientId => $cid,
      subscription => [ '/a', '/b', '/c' ] },
    { id => 'u1', channel => '/meta/unsubscribe',
      successful => JSON::PP::false, error => '400::too_many_channels',
      clientId => $cid, subscription => [ '/a', '/b', '/c', '/d' ] },
], 'replies, exactly');
my $b = client();
$b->handshake;
ok(main::got_on($b, $a, '/a'), 'the unsubscribe refused left /a');
ok(!main::got_on($b, $a, '/d'), 'the subscribe refused added no /d');
--- no_error_log
[error]
[alert]



=== TEST 2: too many subscriptions: refused whole, the batch goes on
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_subscriptions 3;
    }
--- bayeux
my $a = client();
$a->handshake;
$a->connect;
my $cid = $a->client_id;
my $res = $a->post('/', [
    { channel => '/meta/subscribe', clientId => $cid, id => '1',
      subscription => [ '/a', '/b' ] },
    { channel => '/meta/subscribe', clientId => $cid, id => '2',
      subscription => [ '/c', '/d' ] },
    { channel => '/meta/subscribe', clientId => $cid, id => '3',
      subscription => '/c' },
    { channel => '/meta/subscribe', clientId => $cid, id => '4',
      subscription => [ '/a', '/c' ] },
    { channel => '/meta/subscribe', clientId => $cid, id => '5',
      subscription => '/e' },
]);
is_deeply($res->{messages}, [
    { id => '1', channel => '/meta/subscribe',
      successful => JSON::PP::true, clientId => $cid,
      subscription => [ '/a', '/b' ] },
    { id => '2', channel => '/meta/subscribe',
      successful => JSON::PP::false, error => '403::too_many_subscriptions',
      clientId => $cid, subscription => [ '/c', '/d' ] },
    { id => '3', channel => '/meta/subscribe',
      successful => JSON::PP::true, clientId => $cid,
      subscription => '/c' },
    { id => '4', channel => '/meta/subscribe',
      successful => JSON::PP::true, clientId => $cid,
      subscription => [ '/a', '/c' ] },
    { id => '5', channel => '/meta/subscribe',
      successful => JSON::PP::false, error => '403::too_many_subscriptions',
      clientId => $cid, subscription => '/e' },
], 'replies, exactly: subscribing again adds nothing');
my $b = client();
$b->handshake;
ok(main::got_on($b, $a, '/c'), 'subscribed to /c');
ok(!main::got_on($b, $a, '/d'), 'nothing of the refused message: no /d');
ok(!main::got_on($b, $a, '/e'), 'no /e');

# an unsubscribe makes room; a channel twice in a message counts once
my @r = $a->unsubscribe('/a', '/b');
ok($r[0]{successful} && $r[1]{successful}, 'unsubscribed /a and /b');
$res = $a->post('/', [
    { channel => '/meta/subscribe', clientId => $cid, id => '6',
      subscription => [ '/e', '/e', '/f' ] },
    { channel => '/meta/subscribe', clientId => $cid, id => '7',
      subscription => '/g' },
]);
is($res->{messages}[0]{successful}, JSON::PP::true, 'room again');
is($res->{messages}[1]{error}, '403::too_many_subscriptions', 'full again');
ok(main::got_on($b, $a, '/f'), 'subscribed to /f');
ok(!main::got_on($b, $a, '/a'), 'no longer to /a');

# the limit is the session's: another session has its own
my $c = client();
$c->handshake;
is($c->subscribe('/a')->{successful}, JSON::PP::true, 'another session');
--- no_error_log
[error]
[alert]



=== TEST 3: defaults: 100 channels a message, 1000 subscriptions a session
--- bayeux
my $a = client();
$a->handshake;
my $cid = $a->client_id;
my @ch = map { "/d/$_" } 1 .. 1001;
my $res = $a->post('/', [
    { channel => '/meta/subscribe', clientId => $cid, id => 'big',
      subscription => [ @ch[0 .. 100] ] },
    (map {
        { channel => '/meta/subscribe', clientId => $cid, id => "m$_",
          subscription => [ @ch[$_ * 100 .. $_ * 100 + 99] ] }
    } 0 .. 9),
    { channel => '/meta/subscribe', clientId => $cid, id => 'last',
      subscription => [ $ch[1000] ] },
]);
my @m = @{ $res->{messages} };
is($m[0]{error}, '400::too_many_channels', '101 channels refused');
is(scalar(grep { $_->{successful} } @m[1 .. 10]), 10,
   '10 x 100 channels subscribed');
is($m[11]{error}, '403::too_many_subscriptions', 'the 1001st refused');
--- no_error_log
[error]
[alert]



=== TEST 4: subscribing 20000 existing channels at once does not stall the others
--- config
    client_max_body_size 16m;
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_channels 20000;
        bayeux_max_subscriptions 40000;
    }
--- log_level: info
--- skip_valgrind
--- timeout: 60
--- bayeux
my $n = 20000;
# names alike but for their end: each comparison of them reads far
my $prefix = '/bench/' . ('x' x 40) . '/';
my @old = map { sprintf '%s%05d/o', $prefix, $_ } 1 .. $n;
my @new = map { sprintf '%s%05d/n', $prefix, $_ } 1 .. $n;

my $owner = client(timeout => 60);
$owner->handshake;
my $big = client(timeout => 60);
$big->handshake;
my $other = client();
$other->handshake;
$other->connect;

my $sub = sub {
    my ($c, $channels) = @_;
    return { channel => '/meta/subscribe', clientId => $c->client_id,
             id => 'x', subscription => $channels };
};

# the channels exist: another session is subscribed to them
my $r = $owner->post('/', [ $sub->($owner, \@old) ], timeout => 60);
is($r->{messages}[0]{successful}, JSON::PP::true, 'channels created');

# the session has many subscriptions of its own already
$r = $big->post('/', [ $sub->($big, \@new) ], timeout => 60);
is($r->{messages}[0]{successful}, JSON::PP::true, 'session subscribed');

my $h = $big->post_start('/', [ $sub->($big, \@old) ], timeout => 60);

my ($worst, $rounds) = (0, 0);
until ($h->ready) {
    my $c = $other->connect(advice => { timeout => 0 }, timeout => 60);
    $worst = $c->{elapsed} if $c->{elapsed} > $worst;
    $rounds++;
}
$r = $big->post_finish($h, timeout => 60);
is($r->{messages}[0]{successful}, JSON::PP::true,
   "$n existing channels subscribed in one message");
cmp_ok($worst, '<', 1, "another client's connects meanwhile ($rounds)");

# and gone with the sessions (Redis: no channel key is left to expire)
for my $c ($big, $owner) {
    is($c->disconnect->{successful}, JSON::PP::true, 'disconnected');
}
--- no_error_log
[error]
[alert]
