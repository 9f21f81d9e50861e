package Test::Nginx::Bayeux::Server;

# One nginx instance for a test: writes its server root and nginx.conf,
# starts nginx in the foreground as a child (its own process group), waits
# until it listens, and stops it.  Used by the block runner of
# Test::Nginx::Bayeux and directly by .t files that manage servers
# themselves (conversations, several servers at once, reload, kill).
#
#   my $srv = Test::Nginx::Bayeux::Server->new(
#       config => 'location /cometd { bayeux; }');
#   $srv->start;                 # dies with the error log tail on failure
#   my $c = $srv->client;        # a Bayeux::Client for this server
#   ...
#   $srv->stop;
#   like $srv->error_log_text, qr/.../;

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Fcntl ();
use File::Basename qw(dirname basename);
use File::Path qw(make_path remove_tree);
use File::Spec;
use IO::Socket::IP;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Test::More ();
use Time::HiRes qw(time sleep);

# repo = the directory that holds t/ (this file is
# <repo>/t/lib/Test/Nginx/Bayeux/Server.pm)
our $REPO = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)),
                                        ('..') x 5));
our $T_DIR = "$REPO/t";

our $TOP_ROOT;          # t/servroot-<pid>, or $ENV{TEST_NGINX_SERVROOT}
my $root_seq = 0;
my %running;            # pid => server (weak)
my $owner_pid = $$;

# absolute: nginx runs in its server root, and its sanitizer options
# depend on what this binary is
sub default_binary {
    my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    return File::Spec->rel2abs($bin);
}

# The module to load: TEST_NGINX_MODULE, else build/ngx_bayeux_module.so;
# "static" (or "none") when the binary has the module compiled in
# (util/asan-build), so that no load_module line is written.  A binary
# built with the module (--add-module=<a directory with
# ngx_bayeux_module.c> in nginx -V) is taken as static unless
# TEST_NGINX_MODULE names a file.
sub module_path {
    my ($bin) = @_;
    return $ENV{TEST_NGINX_MODULE} if $ENV{TEST_NGINX_MODULE};
    return 'static' if _binary_info($bin // default_binary())->{static};
    return "$REPO/build/ngx_bayeux_module.so";
}

sub _is_static { defined $_[0] && $_[0] =~ /^(?:static|none)$/ }

# What nginx -V says of a binary: the module compiled in, sanitizers.
my %binary_info;
sub _binary_info {
    my ($bin) = @_;
    return $binary_info{$bin} if $binary_info{$bin};
    my $v = -x $bin ? `'$bin' -V 2>&1` : '';
    my $static = 0;
    for my $dir ($v =~ /--add-module=(\S+)/g) {
        $static = 1 if -f "$dir/ngx_bayeux_module.c";
    }
    return $binary_info{$bin} = {
        V => $v,
        static => $static,
        sanitized => $v =~ /-fsanitize=/ ? 1 : 0,
    };
}

# ASan and UBSan reports (or nginx's "exited on signal" for a crash
# signal) in a log text: the lines from each report's start on.
my $CRASH_RE = qr/exited\ on\ signal\ (?:4|6|7|8|11)\b
                 |ERROR:\ (?:Address|Leak)Sanitizer
                 |:\ runtime\ error:\ /x;

sub sanitizer_options {
    return (
        # leaks too: a worker and the master free their cycle's pool
        # when they exit, and the suites run clean with LeakSanitizer on
        ASAN_OPTIONS => 'detect_leaks=1',
        # (nginx's own harmless reports are suppressed, never the module's)
        UBSAN_OPTIONS => 'print_stacktrace=1:halt_on_error=1'
                         . ":suppressions=$T_DIR/ubsan.suppress",
    );
}

sub use_valgrind { $ENV{TEST_NGINX_USE_VALGRIND} ? 1 : 0 }

# the nginx binary is built with ASan or UBSan
sub sanitized { _binary_info(default_binary())->{sanitized} }

sub top_root {
    $TOP_ROOT //= $ENV{TEST_NGINX_SERVROOT}
                  ? abs_path_make($ENV{TEST_NGINX_SERVROOT})
                  : "$T_DIR/servroot-$$";
    return $TOP_ROOT;
}

sub abs_path_make {
    my ($dir) = @_;
    make_path($dir);
    return abs_path($dir);
}

# A free loopback port (the kernel picks one), unless TEST_NGINX_PORT is set.
sub free_port {
    return $ENV{TEST_NGINX_PORT} if $ENV{TEST_NGINX_PORT};
    return unused_port();
}

# A free loopback port, whatever TEST_NGINX_PORT says (a Redis server, a
# cluster node's bus).  The kernel may give a closed socket's port again:
# a port this process handed out already (to another server or listen of
# the same test, which has not bound it yet) is not given twice.
my %handed_out;
sub unused_port {
    for (1 .. 100) {
        my $s = IO::Socket::IP->new(
            LocalHost => '127.0.0.1',
            LocalPort => 0,
            Proto => 'tcp',
            Listen => 1,
            ReuseAddr => 1,
        ) or die "cannot find a free port: $@\n";
        my $port = $s->sockport;
        close $s;
        return $port unless $handed_out{$port}++;
    }
    die "cannot find a free port not handed out before\n";
}

# Which *_temp_path directives this nginx binary knows (from nginx -V).
my %temp_dirs_cache;
sub _temp_path_directives {
    my ($bin) = @_;
    return @{ $temp_dirs_cache{$bin} } if $temp_dirs_cache{$bin};
    my $v = `'$bin' -V 2>&1`;
    my @d = ('client_body');
    for my $m (qw(proxy fastcgi uwsgi scgi)) {
        push @d, $m unless $v =~ /--without-http_${m}_module/;
    }
    $temp_dirs_cache{$bin} = \@d;
    return @d;
}

# Options:
#   config        text of the server {} block (after listen/server_name)
#   http_config   text at http {} level, before the server
#   main_config   text at the main level
#   workers       worker_processes (default TEST_NGINX_WORKERS or 1)
#   log_level     error_log level (default debug)
#   no_module     do not load the Bayeux module
#   module        path of the module .so (default TEST_NGINX_MODULE or
#                 <repo>/build/ngx_bayeux_module.so)
#   binary        nginx binary (default TEST_NGINX_BINARY or /usr/sbin/nginx)
#   port          listening port (default: a free one, or TEST_NGINX_PORT)
#   root          server root directory (default: a new one under
#                 t/servroot-<pid>/)
#   access_log    write logs/access.log (default: off, or TEST_NGINX_ACCESS_LOG)
#   valgrind      run under valgrind (default TEST_NGINX_USE_VALGRIND)
#   vars          { NAME => value } extra $TEST_NGINX_NAME substitutions
#   user_files    { 'path/under/html' => content }
#   start_timeout seconds to wait for the port (5; 30 under valgrind)
#   stop_timeout  seconds to wait after SIGQUIT (5; 30 under valgrind)
#   name          label used in diagnostics (default: the root's name)
#   crash_check   after stop, fail if a process died of SIGSEGV & co. (1)
sub new {
    my ($class, %a) = @_;
    my $self = bless { %a }, $class;

    $self->{binary} //= default_binary();
    $self->{module} //= module_path($self->{binary});
    $self->{valgrind} //= use_valgrind();
    $self->{workers} //= $ENV{TEST_NGINX_WORKERS} || 1;
    $self->{log_level} //= 'debug';
    $self->{access_log} //= $ENV{TEST_NGINX_ACCESS_LOG} ? 1 : 0;
    $self->{port} //= free_port();
    $self->{root} //= top_root() . '/srv-' . ++$root_seq;
    $self->{name} //= basename($self->{root});
    $self->{start_timeout} //= $self->{valgrind} ? 30 : 5;
    $self->{stop_timeout} //= $self->{valgrind} ? 30 : 5;
    $self->{vars} //= {};
    $self->{crash_check} //= 1;
    $self->{$_} //= '' for qw(config http_config main_config);

    return $self;
}

for my $f (qw(port root pid binary module name valgrind workers
              start_error stop_warning conf_text valgrind_report
              exit_status))
{
    no strict 'refs';
    *$f = sub { $_[0]{$f} };
}

sub conf_file { "$_[0]{root}/conf/nginx.conf" }
sub error_log_file { "$_[0]{root}/logs/error.log" }
sub stderr_file { "$_[0]{root}/logs/stderr.log" }
sub html_dir { "$_[0]{root}/html" }
sub url {
    my ($self, $path) = @_;
    return "http://127.0.0.1:$self->{port}" . ($path // '/');
}
sub running { defined $_[0]{pid} }

# The variables substituted in config and request texts.
sub vars {
    my ($self) = @_;
    return {
        TEST_NGINX_SERVER_PORT => $self->{port},
        TEST_NGINX_PORT => $self->{port},
        TEST_NGINX_SERVROOT => $self->{root},
        TEST_NGINX_HTML_DIR => $self->html_dir,
        TEST_NGINX_REPO => $REPO,
        %{ $self->{vars} },
    };
}

# Replaces $TEST_NGINX_NAME and ${TEST_NGINX_NAME} by the server's variables
# or the environment; nginx's own $variables are left alone.  Dies on an
# unknown TEST_NGINX_ name.
sub expand {
    my ($self, $text) = @_;
    return $text unless defined $text && !ref $text;
    my $vars = ref $self ? $self->vars : {};
    $text =~ s{\$(\{)?(TEST_NGINX_[A-Za-z0-9_]+)(?(1)\})}{
        my $n = $2;
        defined $vars->{$n} ? $vars->{$n}
        : defined $ENV{$n} ? $ENV{$n}
        : die "unknown variable \$$n (not set in the environment)\n"
    }ge;
    return $text;
}

sub _has_directive {
    my ($text, $name) = @_;
    return $text =~ /^\s*\Q$name\E\b/m;
}

# The text of nginx.conf.
sub build_conf {
    my ($self) = @_;
    my $root = $self->{root};
    my $main = $self->expand($self->{main_config});
    my $http = $self->expand($self->{http_config});
    my $server = $self->expand($self->{config});
    my $vg = $self->{valgrind};

    my $c = "# generated by Test::Nginx::Bayeux for $self->{name}\n";
    $c .= "load_module $self->{module};\n"
        unless $self->{no_module} || _is_static($self->{module});
    $c .= "\n$main\n" if $main =~ /\S/;
    unless (_has_directive($main, 'worker_processes') || $vg) {
        $c .= "worker_processes $self->{workers};\n";
    }
    $c .= "daemon off;\n" unless _has_directive($main, 'daemon');
    unless (_has_directive($main, 'master_process')) {
        $c .= "master_process " . ($vg ? 'off' : 'on') . ";\n";
    }
    if ($> == 0 && !_has_directive($main, 'user')) {
        # workers run as root too, so they can use the files of the test
        $c .= "user root;\n";
    }
    # nginx writes it once its configuration is in force: see try_start
    $self->{pid_file} = undef;
    unless (_has_directive($main, 'pid')) {
        $c .= "pid logs/nginx.pid;\n";
        $self->{pid_file} = "$self->{root}/logs/nginx.pid";
    }
    $c .= "error_log logs/error.log $self->{log_level};\n";
    $c .= "events { worker_connections 1024; }\n"
        unless _has_directive($main, 'events');

    $c .= "\nhttp {\n";
    $c .= $self->{access_log} ? "    access_log logs/access.log;\n"
                              : "    access_log off;\n";
    for my $t (_temp_path_directives($self->{binary})) {
        $c .= "    ${t}_temp_path $root/${t}_temp;\n"
            unless _has_directive($http, "${t}_temp_path");
    }
    $c .= "\n$http\n" if $http =~ /\S/;
    $c .= "    server {\n"
        . "        listen 127.0.0.1:$self->{port};\n"
        . "        server_name localhost;\n\n"
        . "$server\n"
        . "    }\n"
        . "}\n";

    return $c;
}

# Creates the server root and writes the config and user files.  The
# first time, an old root of the same name is wiped; later (a restart of
# this server) the logs are kept.
sub prepare {
    my ($self) = @_;
    my $root = $self->{root};
    unless ($self->{prepared_once}) {
        croak "refusing to wipe $root: not a test server root"
            if -e $root && !-e "$root/conf/nginx.conf"
               && !_is_empty_dir($root);
        remove_tree($root) if -e $root;
    }
    make_path("$root/conf", "$root/logs", "$root/html", { mode => 0755 });

    $self->{conf_text} = $self->build_conf;
    _write("$root/conf/nginx.conf", $self->{conf_text});

    my $files = $self->{user_files} || {};
    for my $name (sort keys %$files) {
        croak "bad user file name: $name" if $name =~ m{(?:^|/)\.\.(?:/|$)};
        my $path = "$root/html/$name";
        make_path(dirname($path));
        _write($path, $self->expand($files->{$name}));
    }
    $self->{prepared_once} = 1;
    return 1;
}

sub _is_empty_dir {
    my ($d) = @_;
    opendir(my $dh, $d) or return 0;
    my @e = grep { !/^\.\.?$/ } readdir $dh;
    return !@e;
}

sub _write {
    my ($path, $text) = @_;
    open(my $fh, '>', $path) or die "cannot write $path: $!\n";
    binmode $fh;
    print $fh $text;
    close $fh or die "cannot write $path: $!\n";
}

sub _slurp {
    my ($path, $from) = @_;
    open(my $fh, '<', $path) or return '';
    binmode $fh;
    seek($fh, $from, 0) if $from;
    local $/;
    my $t = <$fh>;
    return $t // '';
}

sub _size { -s $_[0] || 0 }

# Starts nginx; returns 1 when it listens, 0 if it failed (start_error then
# says why, with the tail of its logs).
sub try_start {
    my ($self) = @_;
    croak "$self->{name} is already running" if $self->{pid};

    eval { $self->prepare; 1 } or do {
        $self->{start_error} = "cannot prepare server root: $@";
        return 0;
    };

    my $root = $self->{root};
    $self->{log_offset} = _size($self->error_log_file);
    $self->{stderr_offset} = _size($self->stderr_file);
    $self->{first_log_offset} //= $self->{log_offset};
    $self->{first_stderr_offset} //= $self->{stderr_offset};
    $self->{start_error} = undef;
    $self->{stop_warning} = undef;
    $self->{valgrind_report} = undef;

    my @cmd = ($self->{binary}, '-p', "$root/", '-c', 'conf/nginx.conf');
    if ($self->{valgrind}) {
        my @supp = -f "$T_DIR/valgrind.suppress"
                   ? ("--suppressions=$T_DIR/valgrind.suppress") : ();
        unshift @cmd, 'valgrind', '--tool=memcheck', '--leak-check=full',
            '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
            '--num-callers=30', "--log-file=$root/logs/valgrind.%p.log",
            # nginx unloads the module before the leak report: keep its
            # symbols so that leaks can be told to be the module's
            '--keep-debuginfo=yes',
            @supp;
    }

    # (nginx runs in its server root, so that a core dump lands there)
    $cmd[0] = abs_path($cmd[0]) if $cmd[0] =~ m{/} && -e $cmd[0];

    unlink $self->{pid_file} if $self->{pid_file};

    my $pid = fork;
    die "fork failed: $!" unless defined $pid;
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        chdir $root;
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $self->stderr_file);
        open(STDERR, '>>&', \*STDOUT);
        if (_binary_info($self->{binary})->{sanitized}) {
            my %o = sanitizer_options();
            $ENV{$_} //= $o{$_} for keys %o;
        }
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "cannot exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }

    $self->{pid} = $pid;
    $running{$pid} = $self;
    weaken($running{$pid});
    $self->_start_watchdog($pid);

    my $deadline = time + $self->{start_timeout};
    my $delay = 0.005;
    for (;;) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) {
            $self->{exit_status} = $?;
            $self->_reaped;
            $self->{start_error} = "nginx exited at startup ("
                . _status_text($self->{exit_status}) . ")\n"
                . $self->_log_tail;
            return 0;
        }
        # nginx listens before its modules' init_module, which may still
        # refuse the configuration and exit; the pid file comes after
        last if $self->_listening
                && (!$self->{pid_file} || -e $self->{pid_file});
        if (time > $deadline) {
            $self->{start_error} = "nginx did not listen on port "
                . "$self->{port} within $self->{start_timeout} s\n"
                . $self->_log_tail;
            $self->stop(quiet => 1);
            return 0;
        }
        sleep $delay;
        $delay *= 2 if $delay < 0.05;
    }

    return 1;
}

# Starts nginx, dies (with the log tail) if it does not come up.
sub start {
    my ($self) = @_;
    $self->try_start or croak "$self->{name}: $self->{start_error}";
    return $self;
}

sub _status_text {
    my ($st) = @_;
    return "exit code " . ($st >> 8) unless $st & 127;
    return "signal " . ($st & 127);
}

sub _log_tail {
    my ($self, $lines) = @_;
    $lines //= 15;
    my $out = '';
    for my $f ([ 'stderr', $self->stderr_file, $self->{stderr_offset} ],
               [ 'error.log', $self->error_log_file, $self->{log_offset} ])
    {
        my @l = split /\n/, _slurp($f->[1], $f->[2]);
        next unless @l;
        @l = @l[-$lines .. -1] if @l > $lines;
        $out .= "--- $f->[0] ($f->[1]) ---\n" . join("\n", @l) . "\n";
    }
    return $out || "(no log output)\n";
}

# Is our nginx listening on our port?  Checks /proc: a LISTEN socket on the
# port whose inode is one of the master's descriptors (so another process on
# the same port does not count, and no probe connection is made).  Falls back
# to a connect() where /proc is missing.
sub _listening {
    my ($self) = @_;
    my $pid = $self->{pid};
    my $hexport = sprintf('%04X', $self->{port});

    unless (-r '/proc/net/tcp') {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $self->{port},
                                    Proto => 'tcp', Timeout => 1);
        return $s ? 1 : 0;
    }

    my %inodes;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open(my $fh, '<', $f) or next;
        while (my $l = <$fh>) {
            my @x = split ' ', $l;
            next unless @x > 9 && $x[3] eq '0A';
            next unless $x[1] =~ /:\Q$hexport\E$/;
            $inodes{ $x[9] } = 1;
        }
    }
    return 0 unless %inodes;

    opendir(my $dh, "/proc/$pid/fd") or return 0;
    for my $fd (readdir $dh) {
        my $target = readlink("/proc/$pid/fd/$fd") // next;
        return 1 if $target =~ /^socket:\[(\d+)\]$/ && $inodes{$1};
    }
    return 0;
}

sub _wait_exit {
    my ($self, $timeout) = @_;
    my $pid = $self->{pid};
    my $deadline = time + $timeout;
    for (;;) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid || $w == -1) {
            $self->{exit_status} = $w == $pid ? $? : undef;
            return 1;
        }
        return 0 if time > $deadline;
        sleep 0.01;
    }
}

sub _reaped {
    my ($self) = @_;
    my $pid = delete $self->{pid};
    delete $running{$pid} if defined $pid;
    # nothing of its process group may outlive it (orphaned workers)
    CORE::kill('KILL', -$pid) if defined $pid && $pid > 1;
    $self->_stop_watchdog;
}

# A watchdog process per server: if the test process dies without stopping
# nginx (killed, Ctrl-C, a timeout of the caller), it kills nginx's process
# group, so that no nginx outlives its test.  It waits on a pipe: one byte
# means "stopped normally", end of file means the test process is gone.
# (Its own process group, so a Ctrl-C does not reach it first.)
sub _start_watchdog {
    my ($self, $pgid) = @_;
    pipe(my $r, my $w) or return;
    my $wd = fork;
    return unless defined $wd;
    if ($wd == 0) {
        POSIX::setpgid(0, 0);
        close $w;
        # keep the read end across exec; every other descriptor of ours is
        # close-on-exec, so the watchdog holds no other server's pipe
        my $flags = fcntl($r, Fcntl::F_GETFD(), 0);
        fcntl($r, Fcntl::F_SETFD(), $flags & ~Fcntl::FD_CLOEXEC());
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', '/dev/null');
        { no warnings 'exec';
          exec { $^X } $^X, '-e', 'open(my $r, "<&=", $ARGV[0]) or exit 1;'
              . ' my $n = sysread($r, my $b, 1);'
              . ' kill("KILL", -$ARGV[1]) unless $n;',
              fileno($r), $pgid; }
        POSIX::_exit(1);
    }
    close $r;
    $self->{watchdog} = { pid => $wd, fh => $w };
}

sub _stop_watchdog {
    my ($self) = @_;
    my $wd = delete $self->{watchdog} or return;
    syswrite($wd->{fh}, 'x');
    close $wd->{fh};
    waitpid($wd->{pid}, 0);
}

# Stops nginx: SIGQUIT (graceful), then SIGTERM, then SIGKILL to the whole
# process group.  Under valgrind, then checks the valgrind logs and records a
# failing test if they show errors (nothing is recorded when they are clean).
# Returns 1 if nginx exited on SIGQUIT within stop_timeout, else 0 (and
# stop_warning says what happened).
sub stop {
    my ($self, %o) = @_;
    my $pid = $self->{pid} or return 1;
    my $graceful = 1;

    # SIGQUIT is sent again every second: under valgrind a signal that
    # arrives just before nginx enters epoll_wait() can be handled without
    # waking it up, and nginx would sleep until the next event
    my $deadline = time + $self->{stop_timeout};
    my $exited = 0;
    while (!$exited && time < $deadline) {
        CORE::kill('QUIT', $pid);
        my $left = $deadline - time;
        $exited = $self->_wait_exit($left < 1 ? $left : 1);
    }
    unless ($exited) {
        $graceful = 0;
        $self->{stop_warning} = "$self->{name}: nginx did not exit within "
            . "$self->{stop_timeout} s of SIGQUIT; sent SIGTERM";
        CORE::kill('TERM', $pid);
        unless ($self->_wait_exit(5)) {
            $self->{stop_warning} .= ", then SIGKILL";
            CORE::kill('KILL', -$pid);
            $self->_wait_exit(5);
        }
    }
    $self->_reaped;

    Test::More::diag($self->{stop_warning})
        if $self->{stop_warning} && !$o{quiet};

    if ($self->{valgrind} && $graceful && !$o{quiet}) {
        $self->check_valgrind(no_test => $o{no_test});
    }
    $self->check_crashes(no_test => $o{no_test})
        if $self->{crash_check} && !$o{quiet};
    return $graceful;
}

# Records a failing test if the error log says a process died of a crash
# signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) since the start, or has
# an AddressSanitizer or UndefinedBehaviorSanitizer report (an nginx built
# by util/asan-build writes them to stderr, which nginx points at
# error.log): a crashed worker is respawned by the master and could
# otherwise go unnoticed.  Nothing is recorded when there was no crash.
sub check_crashes {
    my ($self, %o) = @_;
    my @log = split /\n/, $self->error_log_text;
    my @lines;
    for my $i (0 .. $#log) {
        next unless $log[$i] =~ $CRASH_RE;
        # a sanitizer report: its stack follows (what is not already shown)
        my $to = $log[$i] =~ /exited on signal/ ? $i
               : $i + 30 > $#log ? $#log : $i + 30;
        push @lines, @log[$i .. $to];
        last if @lines > 200;
    }
    return 1 unless @lines;
    if ($o{no_test}) {
        Test::More::diag("$self->{name}: crash:\n" . join("\n", @lines));
    } else {
        Test::More::ok(0, "$self->{name} - no process crashed");
        Test::More::diag(join("\n", @lines));
    }
    return 0;
}

# Graceful reload (SIGHUP).  Waits until the new worker processes run (with
# a master process) or until the log says the configuration was reloaded.
# Rewrites nginx.conf first if %new_conf (config, http_config, main_config)
# is given.
sub reload {
    my ($self, %new_conf) = @_;
    my $pid = $self->{pid} or croak "$self->{name} is not running";
    if (%new_conf) {
        $self->{$_} = $new_conf{$_} for keys %new_conf;
        $self->{conf_text} = $self->build_conf;
        _write($self->conf_file, $self->{conf_text});
    }
    my @old = $self->worker_pids;
    my $log_from = _size($self->error_log_file);
    CORE::kill('HUP', $pid);

    # done when the old workers are gone and the new ones run (so no old
    # worker accepts a connection any more); without a master process,
    # when the log says so
    my $deadline = time + $self->{start_timeout};
    while (time < $deadline) {
        if (@old) {
            my %now = map { $_ => 1 } $self->worker_pids;
            my $new = grep { my $p = $_; !grep { $_ == $p } @old } keys %now;
            return 1 if $new >= $self->{workers} && !grep { $now{$_} } @old;
        } else {
            return 1 if _slurp($self->error_log_file, $log_from)
                        =~ /reconfiguring/;
        }
        sleep 0.02;
    }
    Test::More::diag("$self->{name}: no sign of the reload after "
                     . "$self->{start_timeout} s");
    return 0;
}

# SIGKILL to master and workers (no graceful shutdown, no valgrind report).
# Returns when every process of the group is dead.
sub kill {
    my ($self) = @_;
    my $pid = $self->{pid} or return 1;
    CORE::kill('KILL', -$pid);
    CORE::kill('KILL', $pid);
    $self->_wait_exit(5);
    $self->_reaped;
    my $deadline = time + 5;
    sleep 0.005 while _group_alive($pid) && time < $deadline;
    return 1;
}

# Live (not zombie) processes of a process group, from /proc.
sub _group_alive {
    my ($pgid) = @_;
    opendir(my $dh, '/proc') or return 0;
    my $n = 0;
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open(my $fh, '<', "/proc/$p/stat") or next;
        my $stat = <$fh> // next;
        my ($state, $pgrp) = $stat =~ /\)\s+(\S+)\s+\d+\s+(\d+)/ or next;
        $n++ if $pgrp == $pgid && $state ne 'Z' && $state ne 'X';
    }
    return $n;
}

# Sends a signal to the master process.
sub signal {
    my ($self, $sig) = @_;
    my $pid = $self->{pid} or croak "$self->{name} is not running";
    return CORE::kill($sig, $pid);
}

# The worker pids once at least $n (default: the workers configured) run,
# or what runs after $timeout seconds (default 10): nginx listens before
# it forks its workers, so a test that compares worker pids before and
# after must not take them before the workers exist.
sub wait_workers {
    my ($self, $n, $timeout) = @_;
    return () if $self->{valgrind};     # master_process off: no workers
    $n //= $self->{workers};
    my $deadline = time + ($timeout // 10);
    my @pids = $self->worker_pids;
    while (@pids < $n && time < $deadline) {
        sleep 0.01;
        @pids = $self->worker_pids;
    }
    return @pids;
}

# Process ids of what serves the requests: the workers, or under
# valgrind (master_process off) nginx itself.
sub serving_pids {
    my ($self) = @_;
    return $self->{valgrind} ? grep { defined } ($self->{pid})
                             : $self->worker_pids;
}

# Process ids of the children of the master (the workers, cache processes).
sub worker_pids {
    my ($self) = @_;
    my $pid = $self->{pid} or return ();
    my @kids;
    opendir(my $dh, '/proc') or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open(my $fh, '<', "/proc/$p/stat") or next;
        my $stat = <$fh> // next;
        # pid (comm) state ppid ...: comm may contain spaces
        my ($ppid) = $stat =~ /\)\s+\S+\s+(\d+)/ or next;
        push @kids, $p if $ppid == $pid;
    }
    return sort { $a <=> $b } @kids;
}

# Size of the error log now: pass it to error_log_text to get what was
# written after this point.
sub error_log_offset { _size($_[0]->error_log_file) }

# What nginx wrote to logs/error.log since it was started (or since
# $offset), preceded by what it wrote to stderr since it was started.
sub error_log_text {
    my ($self, $offset) = @_;
    my $err = _slurp($self->stderr_file, $self->{stderr_offset} // 0);
    return $err . _slurp($self->error_log_file,
                         $offset // $self->{log_offset} // 0);
}

# The same since the first start of this server object (across restarts).
sub all_log_text {
    my ($self) = @_;
    return _slurp($self->stderr_file, $self->{first_stderr_offset} // 0)
         . _slurp($self->error_log_file, $self->{first_log_offset} // 0);
}

# Waits until the error log (since start, or since $o{offset}) matches the
# pattern (a string or qr//).  Returns true if it did within the timeout.
sub wait_for_log {
    my ($self, $pattern, %o) = @_;
    my $re = ref $pattern ? $pattern : qr/\Q$pattern\E/;
    my $deadline = time + ($o{timeout} // 5);
    for (;;) {
        return 1 if $self->error_log_text($o{offset}) =~ $re;
        return 0 if time > $deadline;
        sleep 0.02;
    }
}

# A Bayeux::Client for this server (path /cometd unless given).
sub client {
    my ($self, %o) = @_;
    require Bayeux::Client;
    return Bayeux::Client->new(port => $self->{port}, %o);
}

# Valgrind: the errors found in logs/valgrind.*.log (excerpts), as a string;
# '' when clean.  Memory errors of any kind, and "definitely lost" leaks whose
# stack mentions ngx_bayeux.
sub valgrind_errors {
    my ($self) = @_;
    my @bad;
    opendir(my $dh, "$self->{root}/logs") or return '';
    for my $f (sort grep { /^valgrind\.\d+\.log$/ } readdir $dh) {
        my $text = _slurp("$self->{root}/logs/$f");
        # records are separated by "==pid== " blank lines
        my @records = split /^==\d+==\s*\n/m, $text;
        for my $r (@records) {
            my $is_error = $r =~ /Invalid\ read|Invalid\ write
                                 |Conditional\ jump|uninitialised
                                 |Syscall\ param|Invalid\ free
                                 |Mismatched\ free
                                 |Source\ and\ destination\ overlap/x;
            # (a record without a stack is a summary or a hint)
            $is_error &&= $r =~ /^==\d+==\s+(?:at|by) 0x/m;
            my $is_leak = $r =~ /definitely lost in loss record/
                          && $r =~ /ngx_bayeux/;
            push @bad, "$f:\n$r" if $is_error || $is_leak;
        }
    }
    return join("\n", @bad);
}

# Records a failing test if valgrind found errors (nothing when clean, so
# plans do not change).  Returns true when clean.
sub check_valgrind {
    my ($self, %o) = @_;
    my $errors = $self->valgrind_errors;
    $self->{valgrind_report} = $errors;
    return 1 unless length $errors;
    if ($o{no_test}) {
        Test::More::diag("$self->{name}: valgrind errors:\n$errors");
    } else {
        Test::More::ok(0, "$self->{name} - valgrind clean");
        Test::More::diag($errors);
    }
    return 0;
}

sub DESTROY {
    my ($self) = @_;
    return unless $$ == $owner_pid;
    local ($?, $!, $@);
    $self->stop(quiet => 1) if $self->{pid};
}

# Servers still running at exit are stopped; t/servroot-<pid> is removed if
# every test passed (kept, and named, otherwise; always kept with
# TEST_NGINX_SERVROOT or TEST_NGINX_KEEP).
END {
    if ($$ == $owner_pid) {
        local $?;
        for my $srv (grep { defined } values %running) {
            $srv->stop(quiet => 1, no_test => 1);
        }
        cleanup_top_root();
    }
}

sub cleanup_top_root {
    return unless defined $TOP_ROOT && -d $TOP_ROOT;
    return if $ENV{TEST_NGINX_SERVROOT} || $ENV{TEST_NGINX_KEEP};
    my $tb = Test::More->builder;
    if ($tb->is_passing) {
        remove_tree($TOP_ROOT);
    } else {
        Test::More::diag("server roots kept in $TOP_ROOT");
    }
}

1;
