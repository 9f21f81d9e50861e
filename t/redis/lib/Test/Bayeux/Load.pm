package Test::Bayeux::Load;

# Many long-polling clients at once from one Perl process: subscribers that
# keep a /meta/connect outstanding, publishers that send numbered messages
# in batches, one batch at a time.  Deliveries are counted with a regex,
# not decoded, so that a million of them fit in the time of a test.
#
#   my $res = Test::Bayeux::Load::run(
#       ports => [ $port ],          # the requests of each client rotate
#       subscribers => 100, publishers => 10, messages => 1000,
#       batch => 20, timeout => 60,
#       pause => 0.02,               # between two batches of a publisher
#       on_tick => sub { ... },      # called about every 50 ms
#   );
#   # $res: elapsed, delivered (total), per_subscriber (arrayref of
#   # counts), gaps, duplicates (both: per publisher order broken),
#   # errors (arrayref of texts), complete (all delivered)
#
# Every publisher p publishes {"p":p,"s":s} with s = 1, 2, ... on the
# channel; a subscriber must see, for every p, s = 1, 2, ... with no gap
# and no repeat.

use strict;
use warnings;

use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(time sleep);

use Bayeux::Client;

sub run {
    my (%o) = @_;
    my $ports = $o{ports} or die "ports required\n";
    my $path = $o{path} // '/cometd';
    my $nsub = $o{subscribers} // 10;
    my $npub = $o{publishers} // 1;
    my $nmsg = $o{messages} // 100;
    my $batch = $o{batch} // 10;
    my $channel = $o{channel} // '/load';
    my $timeout = $o{timeout} // 60;
    my $keepalive = $o{keepalive} // 1;
    my $on_tick = $o{on_tick};
    my $pause = $o{pause} // 0;
    my $total = $npub * $nmsg;

    my $res = {
        errors => [], gaps => 0, duplicates => 0, delivered => 0,
        per_subscriber => [], requests => 0, reopened => 0,
    };
    my $error = sub {
        my ($text) = @_;
        push @{ $res->{errors} }, $text if @{ $res->{errors} } < 50;
    };

    # sessions are set up one by one, with the ordinary client
    my $turn = 0;
    my @agents;
    for my $i (0 .. $nsub + $npub - 1) {
        my $port = $ports->[ $turn++ % @$ports ];
        my $c = Bayeux::Client->new(port => $port, path => $path);
        my $h = $c->handshake;
        die "load: handshake failed\n" unless $h && $h->{successful};
        my $sub = $i < $nsub;
        if ($sub) {
            my $s = $c->subscribe($channel);
            die "load: subscribe failed\n" unless $s && $s->{successful};
            my $r = $c->connect;
            die "load: first connect failed\n"
                unless $r->{reply} && $r->{reply}{successful};
        }
        $c->close;
        # its session is bound to its browser: the cookie goes along
        my $jar = $c->cookie_jar;
        push @agents, {
            id => $c->client_id, jar => $jar,
            cookie => join('; ', map { "$_=$jar->{$_}" } sort keys %$jar),
            sub => $sub, index => $sub ? $i : $i - $nsub,
            port_turn => $i, in => '', out => '', busy => 0,
            last => [ (0) x $npub ], count => 0, next_seq => 1,
        };
    }

    my $t0 = time;
    my $deadline = $t0 + $timeout;

    my $open = sub {
        my ($a) = @_;
        my $port = $ports->[ $a->{port_turn}++ % @$ports ];
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $port, Proto => 'tcp',
                                    Timeout => 5)
            or do { $error->("connect to $port: $@"); return 0 };
        $s->blocking(0);
        $a->{sock} = $s;
        $a->{in} = '';
        return 1;
    };

    my $send = sub {
        my ($a, $suffix, $body) = @_;
        if (!$a->{sock}) {
            $open->($a) or return;
        }
        $a->{out} = "POST $path$suffix HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json;charset=UTF-8\r\n"
            . "Content-Length: " . length($body) . "\r\n"
            . ($a->{cookie} ne '' ? "Cookie: $a->{cookie}\r\n" : '')
            . ($keepalive ? '' : "Connection: close\r\n")
            . "\r\n" . $body;
        $a->{busy} = 1;
        $a->{sent} = $body;
        $res->{requests}++;
    };

    my $next_request = sub {
        my ($a) = @_;
        if ($a->{sub}) {
            $send->($a, '/connect',
                    '[{"channel":"/meta/connect","clientId":"' . $a->{id}
                    . '","connectionType":"long-polling"}]');
            return;
        }
        return if $a->{next_seq} > $nmsg;
        return if $a->{not_before} && time < $a->{not_before};
        $a->{not_before} = time + $pause if $pause;
        my @m;
        while (@m < $batch && $a->{next_seq} <= $nmsg) {
            push @m, '{"channel":"' . $channel . '","clientId":"' . $a->{id}
                     . '","data":{"p":' . $a->{index} . ',"s":'
                     . $a->{next_seq}++ . '}}';
        }
        $a->{batch_size} = @m;
        $send->($a, '/', '[' . join(',', @m) . ']');
    };

    my $handle = sub {
        my ($a, $status, $body) = @_;
        $a->{busy} = 0;
        if ($status != 200) {
            $error->("status $status for " . substr($a->{sent}, 0, 60));
            return;
        }
        if ($a->{sub}) {
            my $last = $a->{last};
            while ($body =~ /"data":\{"p":(\d+),"s":(\d+)\}/g) {
                my ($p, $s) = ($1, $2);
                if ($s == $last->[$p] + 1) {
                    $last->[$p] = $s;
                } elsif ($s <= $last->[$p]) {
                    $res->{duplicates}++;
                } else {
                    $res->{gaps}++;
                    $last->[$p] = $s;
                }
                $a->{count}++;
                $res->{delivered}++;
            }
            if ($body =~ /"error":"([^"]*)"/) {
                my $e = $1;
                $error->("subscriber $a->{index}: $e");
                # an unknown session cannot recover here: stop asking
                $a->{dead} = 1 if $e =~ /^402/;
            }
        } else {
            my $ok = () = $body =~ /"successful":true/g;
            if ($ok != $a->{batch_size}) {
                $error->("publisher $a->{index}: " . substr($body, 0, 200));
                # a failed batch is sent again: order is kept, and the
                # subscribers count what arrives twice
                $a->{next_seq} -= $a->{batch_size};
            }
        }
    };

    # reads what is there; returns 0 when the connection ended
    my $read = sub {
        my ($a) = @_;
        for (;;) {
            my $n = sysread($a->{sock}, my $chunk, 262144);
            if (!defined $n) {
                return 1 if $! == EAGAIN || $! == EWOULDBLOCK;
                next if $! == EINTR;
                return 0;
            }
            return 0 if $n == 0;
            $a->{in} .= $chunk;
        }
    };

    my $parse = sub {
        my ($a) = @_;
        my $i = index($a->{in}, "\r\n\r\n");
        return 0 if $i < 0;
        my $head = substr($a->{in}, 0, $i);
        my ($status) = $head =~ m{^HTTP/1\.\d (\d+)};
        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        $len //= 0;
        return 0 if length($a->{in}) < $i + 4 + $len;
        my $body = substr($a->{in}, $i + 4, $len);
        substr($a->{in}, 0, $i + 4 + $len) = '';
        my $close = !$keepalive || $head =~ /^Connection:\s*close/mi;
        $handle->($a, $status // 0, $body);
        if ($close) {
            close $a->{sock};
            delete $a->{sock};
            $a->{in} = '';
        }
        return 1;
    };

    my $last_tick = 0;

    for (;;) {
        my $now = time;
        my $done_pub = !grep { !$_->{sub} && ($_->{busy}
                                              || $_->{next_seq} <= $nmsg) }
                       @agents;
        my $done_sub = !grep { $_->{sub} && !$_->{dead}
                               && $_->{count} < $total } @agents;
        last if $done_pub && $done_sub;
        last if $now > $deadline;
        last if !grep { $_->{sub} && !$_->{dead} } @agents;

        if ($on_tick && $now - $last_tick > 0.05) {
            $last_tick = $now;
            $on_tick->($now - $t0);
        }

        for my $a (@agents) {
            next if $a->{busy} || $a->{dead};
            next if $a->{sub} && $a->{count} >= $total;
            $next_request->($a);
        }

        my $rsel = IO::Select->new;
        my $wsel = IO::Select->new;
        my %by_fd;
        for my $a (@agents) {
            next unless $a->{sock};
            $by_fd{ fileno $a->{sock} } = $a;
            $rsel->add($a->{sock});
            $wsel->add($a->{sock}) if length $a->{out};
        }
        my ($r, $w) = IO::Select->select($rsel, $wsel, undef,
                                         $pause ? 0.005 : 0.05);

        for my $s (@{ $w || [] }) {
            my $a = $by_fd{ fileno $s } or next;
            my $n = syswrite($s, $a->{out});
            substr($a->{out}, 0, $n) = '' if $n;
        }

        for my $s (@{ $r || [] }) {
            my $a = $by_fd{ fileno $s } or next;
            my $alive = $read->($a);
            1 while $a->{sock} && $parse->($a);
            if (!$alive && $a->{sock}) {
                # the server closed the connection: a request without a
                # response is sent again on a new one (only a connect can
                # be; a publish would be counted twice)
                close $a->{sock};
                delete $a->{sock};
                $res->{reopened}++;
                if ($a->{busy}) {
                    if ($a->{sub}) {
                        $a->{busy} = 0;
                    } else {
                        $error->("publisher $a->{index}: connection closed "
                                 . "without a response");
                        $a->{busy} = 0;
                        $a->{next_seq} -= $a->{batch_size};
                    }
                }
                $a->{out} = '';
            }
        }
    }

    for my $a (@agents) {
        close $a->{sock} if $a->{sock};
        push @{ $res->{per_subscriber} }, $a->{count} if $a->{sub};
    }

    $res->{elapsed} = time - $t0;
    $res->{expected} = $total;
    $res->{complete} = !grep { $_ != $total } @{ $res->{per_subscriber} };
    $res->{ids} = [ map { $_->{id} } grep { $_->{sub} } @agents ];
    $res->{jars} = [ map { $_->{jar} } grep { $_->{sub} } @agents ];
    return $res;
}

1;
