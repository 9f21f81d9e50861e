package Test::Bayeux::AckStream;

# Traffic for the failover tests (t/redis/120-sentinel.t,
# t/redis/130-cluster.t): a publisher sends numbered messages to /feed one
# at a time, and a consumer that uses the ack extension keeps a
# /meta/connect under way and collects what it is given.
#
#   my $s = Test::Bayeux::AckStream->new(publisher => $pub,
#                                        consumer => $acker);
#   my $status = $s->turn(\@acked);  # 'ok', 'no reply' or the error;
#                                    # [number, time] of an ok into @acked
#   my @started = map { $s->turn_start } 1 .. 3;  # not awaited
#   my @statuses = $s->turn_finish(\@acked, @started);
#   my $done = $s->until_done(\@acked, sub { failover_complete() },
#                             within => 40, pause => 0.05);
#   $s->drain(within => 10, wait => 3, pause => 0.1);
#   my %seen = $s->check('failover', $first, \@acked,
#                        'nothing acknowledged is lost',
#                        concurrent => [ map { $_->[0] } @started ],
#                        after_failover => 1);
#   $s->got; $s->seq; $s->statuses; $s->retries; $s->forget;

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);

sub new {
    my ($class, %args) = @_;
    return bless { pub => $args{publisher}, acker => $args{consumer},
                   ack => 0, seq => 0, got => [], statuses => [],
                   retries => 0 }, $class;
}

sub got { @{ $_[0]{got} } }
sub seq { $_[0]{seq} }
sub statuses { @{ $_[0]{statuses} } }

# publishes answered 503::engine_unavailable with retry advice
sub retries { $_[0]{retries} }

sub forget {
    my ($self) = @_;
    @$self{qw(got statuses retries)} = ([], [], 0);
}

# the consumer's connect, awaited "wait" seconds: 1 if it was answered;
# one not answered yet is awaited again next time, unless "give_up"
sub _connect {
    my ($self, $wait, $give_up) = @_;
    my $acker = $self->{acker};
    $self->{held} //= $acker->connect_start(ext => { ack => $self->{ack} });
    my $c = $acker->connect_finish($self->{held}, timeout => $wait);
    delete $self->{held} if $give_up || !$c->{timed_out};
    return 0 if $c->{timed_out};
    if ($c->{reply} && $c->{reply}{successful}) {
        push @{ $self->{got} }, map { $_->{data} } @{ $c->{deliveries} };
        my $ext = $c->{reply}{ext};
        $self->{ack} = $ext->{ack} if $ext && defined $ext->{ack};
    } elsif ($c->{reply} && ($c->{reply}{error} // '') =~ /^402/) {
        fail("the consumer's session was lost: $c->{reply}{error}");
    }
    return $c->{reply} && $c->{reply}{successful};
}

# the status of publish $n, sent at $t, answered $r (undef: no reply)
sub _answered {
    my ($self, $acked, $n, $t, $r) = @_;
    my $status = !$r ? 'no reply'
               : $r->{successful} ? 'ok'
               : $r->{error} // 'failed';
    push @{ $self->{statuses} }, $status;
    $self->{retries}++ if $status eq '503::engine_unavailable'
                          && ($r->{advice}{reconnect} // '') eq 'retry';
    push @$acked, [ $n, $t ] if $status eq 'ok';
    return $status;
}

# one turn of traffic: a publish, and the consumer's connect if answered
sub turn {
    my ($self, $acked) = @_;
    my $n = ++$self->{seq};
    my $t = time;
    my $status = $self->_answered($acked, $n, $t,
                                  $self->{pub}->publish('/feed', $n));
    $self->_connect(0.05);
    return $status;
}

# A publish sent and not awaited (the server may hold it back while the
# test does something); turn_finish(\@acked, @started) awaits the replies
# and returns their statuses, as turn() does.
sub turn_start {
    my ($self) = @_;
    my $n = ++$self->{seq};
    return [ $n, time, $self->{pub}->publish_start('/feed', $n,
                           _opts => { new_connection => 1 }) ];
}

sub turn_finish {
    my ($self, $acked, @started) = @_;
    return map {
        my ($n, $t, $h) = @$_;
        $self->_answered($acked, $n, $t,
                         $self->{pub}->publish_finish($h, timeout => 10));
    } @started;
}

# Turns of traffic until $done->() is true and a publish is acknowledged
# a second after it, at most "within" seconds, "pause" between turns.
# Returns when $done->() first held (time()), or undef.
sub until_done {
    my ($self, $acked, $done, %args) = @_;
    my $when;
    my $deadline = time + $args{within};
    while (time < $deadline) {
        my $status = $self->turn($acked);
        $when = time if !$when && $done->();
        last if $when && $status eq 'ok' && time > $when + 1;
        sleep $args{pause};
    }
    return $when;
}

# what the consumer still has to get, up to the last publish
sub drain {
    my ($self, %args) = @_;
    my $deadline = time + ($args{within} // 10);
    while (time < $deadline) {
        if ($self->_connect($args{wait} // 3, 1)) {
            my $got = $self->{got};
            return if @$got && $got->[-1] == $self->{seq};
        } else {
            sleep $args{pause} // 0.1;
        }
    }
}

# the messages from number "first" on came once each, in order, and all
# of "must" ([number, time] each) among them; with "only_from_first",
# none before "first" came either; "concurrent" (numbers) were published
# without waiting for each other's replies (from turn_start), so they may
# come in any order, whichever worker took each; "after_failover": "must"
# were published after a failover completed, and what came of those
# before may come again (the old primary's last writes, such as the
# record of what was given or acknowledged, are lost): counted and
# reported, not asserted; returns what was seen
sub check {
    my ($self, $name, $first, $must, $what, %opt) = @_;
    my @got = $self->got;
    my $once_from = $opt{after_failover} && @$must ? $must->[0][0] : undef;
    my %seen;
    my @dup = grep { $seen{$_}++ } @got;
    if (defined $once_from) {
        diag("$name: " . scalar(grep { $_ < $once_from } @dup)
             . ' messages given before the failover completed were given '
             . 'again (asynchronous replication)');
        @dup = grep { $_ >= $once_from } @dup;
    }
    is_deeply(\@dup, [], "$name: no message twice");
    my %any = map { $_ => 1 } @{ $opt{concurrent} || [] };
    my @order = grep { $_ >= ($once_from // $first) && !$any{$_} } @got;
    my @from = grep { !$any{$_} }
               $opt{only_from_first} ? @got : grep { $_ >= $first } @got;
    if (defined $once_from) {
        ok(!grep({ $_ < $first } @got),
           "$name: nothing published before the case came")
            if $opt{only_from_first};
        @from = @order;
    }
    is_deeply(\@order, [ sort { $a <=> $b } @from ], "$name: in order");
    my @lost = grep { !$seen{$_->[0]} } @$must;
    is_deeply([ map { $_->[0] } @lost ], [],
              "$name: $what (" . scalar(@$must) . ' messages)');
    return %seen;
}

1;
