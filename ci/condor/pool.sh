#!/usr/bin/env bash
# A throw-away HTCondor pool on 127.0.0.1 for taucoffea's tests.
#
# Debian bookworm ships no HTCondor and trixie's packages need a newer glibc, so the pool lives
# in a Debian trixie chroot (debootstrap + minicondor). The Parsl driver runs *inside* the chroot
# as an ordinary user (root cannot submit) with the project tree and the host's Python bind-mounted
# at the same paths, so job outputs and HTEX certificates belong to the job owner and paths mean the
# same thing inside and outside.  Facts behind every step: docs/condor.md.
#
# Usage: ci/condor/pool.sh setup|start|stop|teardown|status|run-as-user CMD...
#
# Exit codes: 0 ok, 1 failure, 2 usage/configuration error,
#             3 this machine cannot host the pool (not root, no debootstrap, mirror unreachable,
#               mounts not permitted) -- tests turn that into a skip, never into a silent pass.
#
# Environment (all optional):
#   TAUCOFFEA_CONDOR_ROOT     pool directory            (default /var/tmp/taucoffea-condor)
#   TAUCOFFEA_CONDOR_PYTHON   interpreter whose prefix is bound into the chroot (default python3)
#   TAUCOFFEA_CONDOR_PROJECT  project tree bound into the chroot (default: this repository)
#   TAUCOFFEA_CONDOR_BINDS    extra host dirs (colon separated) bound read-only at the same path
#   TAUCOFFEA_CONDOR_USER / TAUCOFFEA_CONDOR_UID   submit user (default taucondor / 2000)
#   TAUCOFFEA_CONDOR_MIRROR   Debian mirror URI (default: read from this machine's apt sources)
#   TAUCOFFEA_CONDOR_SUITE    Debian suite for the chroot (default trixie)
#   TAUCOFFEA_CONDOR_CWD      working directory of run-as-user (default: the scratch dir)
#   TAUCOFFEA_CONDOR_PASSENV  names of extra variables run-as-user passes into the chroot
set -euo pipefail

readonly SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly ROOT="${TAUCOFFEA_CONDOR_ROOT:-/var/tmp/taucoffea-condor}"
readonly CHROOT="$ROOT/chroot"
readonly STATE="$ROOT/state"
readonly LOGDIR="$ROOT/log"
readonly SCRATCH="$ROOT/scratch"
readonly SUITE="${TAUCOFFEA_CONDOR_SUITE:-trixie}"
readonly SUBMIT_USER="${TAUCOFFEA_CONDOR_USER:-taucondor}"
readonly SUBMIT_UID="${TAUCOFFEA_CONDOR_UID:-2000}"
readonly MARKER="$ROOT/.taucoffea-condor-root"
# Shared libraries a CPython built on Debian loads (ssl, ctypes, sqlite3, bz2, lzma, readline, uuid,
# expat, C++ runtime for numpy/awkward wheels).  minbase trixie lacks most of them.
readonly RUNTIME_PACKAGES="libssl3t64 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 zlib1g libuuid1
 libreadline8t64 libncursesw6 libtinfo6 libexpat1 libcrypt1 libnsl2 libtirpc3t64 libstdc++6
 libgcc-s1 libgomp1 ca-certificates procps"
readonly RECIPE="suite=$SUITE packages=minicondor $RUNTIME_PACKAGES recipe=3"
readonly CONDOR_CONFIG_FILE="/etc/condor/config.d/99-taucoffea.conf"

log() { printf '[pool.sh] %s\n' "$*" >&2; }
die() { local code="$1"; shift; log "ERROR: $*"; exit "$code"; }

require_root() {
    [[ "$(id -u)" == 0 ]] || die 3 "must run as root (chroot, mounts, useradd); current uid $(id -u)"
}

validate_root_path() {
    # Teardown deletes $ROOT: refuse anything that could be a system directory or hold whitespace.
    [[ "$ROOT" == /* ]] || die 2 "TAUCOFFEA_CONDOR_ROOT must be absolute, got '$ROOT'"
    [[ "$ROOT" != *[[:space:]]* ]] || die 2 "TAUCOFFEA_CONDOR_ROOT must not contain whitespace: '$ROOT'"
    case "$(realpath -m "$ROOT")" in
        / | /root | /home | /var | /var/tmp | /tmp | /usr | /etc | /opt | /srv | /work)
            die 2 "TAUCOFFEA_CONDOR_ROOT='$ROOT' is a system directory; use a dedicated one" ;;
    esac
}

with_lock() {
    # Serialise state-changing commands of concurrent sessions on the same pool directory.
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.lock"
    flock -n 9 && return 0
    log "waiting for $ROOT/.lock, held by pid(s): $(lock_holders)"
    flock -w 300 9 || die 1 "could not lock $ROOT/.lock within 300 s (held by pid(s): $(lock_holders))"
}

lock_holders() {
    local fd
    for fd in /proc/[0-9]*/fd/*; do
        [[ "$(readlink "$fd" 2>/dev/null)" == "$ROOT/.lock" ]] && { fd="${fd#/proc/}"; echo -n "${fd%%/*} "; }
    done
    return 0
}

# ---------------------------------------------------------------- mounts and processes we own

mounts_under() {
    # Mount points at or below $1, deepest first (children sort after parents, so reverse).
    local base; base="$(realpath -m "$1")"
    awk -v b="$base" '$5 == b || index($5, b "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

record_mount() { mkdir -p "$STATE"; echo "$1" >>"$STATE/mounts"; }

do_mount() {
    # do_mount TARGET ARGS... : mount, record, and keep the mount out of any propagation group so
    # nothing mounted below it (e.g. dev/shm) leaks back to the host.
    local target="$1"; shift
    mount "$@" "$target" || return 1
    record_mount "$target"
    mount --make-private "$target" 2>/dev/null || true
}

unmount_all() {
    # Recorded mounts first (reverse order), then anything a killed session left under the chroot.
    local m
    if [[ -f "$STATE/mounts" ]]; then
        while read -r m; do
            if [[ -n "$m" ]] && mountpoint -q "$m"; then
                umount "$m" 2>/dev/null || umount -l "$m"
            fi
        done < <(tac "$STATE/mounts")
        rm -f "$STATE/mounts"
    fi
    for m in $(mounts_under "$CHROOT"); do
        log "unmounting stale $m"
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    [[ -z "$(mounts_under "$CHROOT")" ]] || die 1 "mounts remain under $CHROOT: $(mounts_under "$CHROOT" | tr '\n' ' ')"
}

chroot_pids() {
    # Every process whose root directory is our chroot: all of them were started by this script
    # (condor daemons, jobs, drivers, interchanges), none by anybody else.
    local real p r
    [[ -d "$CHROOT" ]] || return 0
    real="$(realpath "$CHROOT")"
    for p in /proc/[0-9]*; do
        r="$(readlink "$p/root" 2>/dev/null)" || continue
        [[ "$r" == "$real" ]] && echo "${p#/proc/}"
    done
    return 0
}

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

wait_gone() {
    # wait_gone SECONDS PID... : true once none of the PIDs is alive.
    local deadline=$((SECONDS + $1)); shift
    local p alive
    while :; do
        alive=0
        for p in "$@"; do pid_alive "$p" && alive=1; done
        ((alive == 0)) && return 0
        ((SECONDS >= deadline)) && return 1
        sleep 0.2
    done
}

is_master() { [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == condor_master ]]; }

stop_processes() {
    local masters="" p pids
    [[ -f "$STATE/master.pid" ]] && p="$(cat "$STATE/master.pid")" && pid_alive "$p" && is_master "$p" && masters="$p"
    # A killed session may have lost its state file: its master is still recognisable by its root.
    for p in $(chroot_pids); do
        is_master "$p" && [[ " $masters " != *" $p "* ]] && masters+=" $p"
    done
    if [[ -n "${masters// /}" ]]; then
        # SIGQUIT = fast shutdown; SIGTERM may wait for a job lease (up to 40 min).
        masters="${masters# }"
        log "stopping condor_master (pid $masters) with SIGQUIT"
        kill -QUIT $masters 2>/dev/null || true
        wait_gone 30 $masters || log "condor_master $masters still alive after 30 s"
    fi
    rm -f "$STATE/master.pid"
    pids="$(chroot_pids)"
    if [[ -n "$pids" ]]; then
        log "terminating left-over chroot processes: $(echo $pids)"
        kill -TERM $pids 2>/dev/null || true
        if ! wait_gone 10 $pids; then
            pids="$(chroot_pids)"
            [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
            wait_gone 10 $pids || die 1 "processes in $CHROOT survive SIGKILL: $(echo $pids)"
        fi
    fi
}

# ---------------------------------------------------------------- setup

find_mirror() {
    # The Debian archive this machine already uses: never hard-code a registry host.
    local uri=""
    if [[ -n "${TAUCOFFEA_CONDOR_MIRROR:-}" ]]; then
        echo "$TAUCOFFEA_CONDOR_MIRROR"; return 0
    fi
    shopt -s nullglob
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        uri="$(awk 'tolower($1) == "uris:" && $2 !~ /security/ { print $2; exit }' "$f")"
        [[ -n "$uri" ]] && break
    done
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } } }' /etc/apt/sources.list)"
    fi
    shopt -u nullglob
    [[ -n "$uri" ]] || return 1
    echo "$uri"
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return 0
    command -v apt-get >/dev/null || die 3 "no debootstrap and no apt-get to install it"
    log "installing debootstrap with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } \
        >>"$LOGDIR/setup.log" 2>&1 || die 3 "apt-get could not install debootstrap (see $LOGDIR/setup.log)"
}

probe_mounts() {
    # An unprivileged container may be root but unable to mount: that is "cannot host", not a bug.
    local d; d="$(mktemp -d "$ROOT/.probe.XXXXXX")"
    if mount -t tmpfs -o size=1m tmpfs "$d" 2>/dev/null; then
        umount "$d"; rmdir "$d"
    else
        rmdir "$d"; die 3 "mounting is not permitted here (mount -t tmpfs failed)"
    fi
}

in_chroot() {
    # Root command inside the chroot with a clean environment.
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "${@:2}"
}

build_chroot() {
    # Builds into chroot.partial and renames at the end, so an interrupted build never looks done.
    local partial="$ROOT/chroot.partial" mirror
    mirror="$(find_mirror)" || die 3 "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list (set TAUCOFFEA_CONDOR_MIRROR)"
    if [[ -n "$(mounts_under "$partial")" ]]; then
        for m in $(mounts_under "$partial"); do umount "$m" 2>/dev/null || umount -l "$m"; done
    fi
    [[ -z "$(mounts_under "$partial")" ]] || die 1 "mounts remain under $partial"
    if [[ ! -f "$partial/.taucoffea-debootstrap-ok" ]]; then
        rm -rf --one-file-system "$partial"
        log "debootstrap --variant=minbase $SUITE from $mirror (≈ 30 s, log: $LOGDIR/setup.log)"
        debootstrap --variant=minbase "$SUITE" "$partial" "$mirror" >>"$LOGDIR/setup.log" 2>&1 \
            || die 3 "debootstrap of $SUITE from $mirror failed (see $LOGDIR/setup.log)"
        touch "$partial/.taucoffea-debootstrap-ok"
    fi
    install_packages "$partial"
    mv "$partial" "$CHROOT"
}

install_packages() {
    local dir="$1" rc=0
    [[ "$(cat "$dir/.taucoffea-recipe" 2>/dev/null)" == "$RECIPE" ]] && return 0
    # Daemons must not start during package configuration: we start condor_master ourselves.
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    mount -t proc proc "$dir/proc"
    log "apt-get install --no-install-recommends minicondor + runtime libraries (≈ 20 s)"
    {
        in_chroot "$dir" apt-get update -qq &&
        in_chroot "$dir" apt-get install -y -qq --no-install-recommends minicondor $RUNTIME_PACKAGES &&
        in_chroot "$dir" apt-get clean
    } >>"$LOGDIR/setup.log" 2>&1 || rc=$?
    umount "$dir/proc"
    ((rc == 0)) || die 3 "apt-get install in the chroot failed (see $LOGDIR/setup.log)"
    echo "$RECIPE" >"$dir/.taucoffea-recipe"
}

ensure_users() {
    # Same uid on both sides so files in the shared scratch dir have one owner everywhere.
    local host_name chroot_name
    host_name="$(getent passwd "$SUBMIT_UID" | cut -d: -f1 || true)"
    if [[ -z "$host_name" ]]; then
        getent passwd "$SUBMIT_USER" >/dev/null && die 2 "host user $SUBMIT_USER exists with another uid than $SUBMIT_UID"
        useradd --uid "$SUBMIT_UID" --user-group --no-create-home --shell /usr/sbin/nologin "$SUBMIT_USER" \
            || die 2 "useradd $SUBMIT_USER (uid $SUBMIT_UID) failed on the host"
        echo "$SUBMIT_USER" >"$ROOT/host-user-created"
    elif [[ "$host_name" != "$SUBMIT_USER" ]]; then
        die 2 "uid $SUBMIT_UID belongs to host user '$host_name'; set TAUCOFFEA_CONDOR_UID"
    fi
    chroot_name="$(in_chroot "$CHROOT" getent passwd "$SUBMIT_UID" | cut -d: -f1 || true)"
    if [[ -z "$chroot_name" ]]; then
        in_chroot "$CHROOT" useradd --uid "$SUBMIT_UID" --user-group --create-home \
            --shell /bin/bash "$SUBMIT_USER" || die 1 "useradd in the chroot failed"
    elif [[ "$chroot_name" != "$SUBMIT_USER" ]]; then
        die 2 "uid $SUBMIT_UID belongs to chroot user '$chroot_name'"
    fi
}

configure_condor() {
    # Each line was needed on this machine kind (see docs/condor.md for the failure without it).
    cat >"$CHROOT$CONDOR_CONFIG_FILE" <<'EOF'
# Written by taucoffea ci/condor/pool.sh -- loopback-only personal pool for tests.
NETWORK_INTERFACE = 127.0.0.1
ENABLE_IPV6 = False
# Default makes the starter unshare a mount namespace: fails in a chroot (jobs held, errno=22).
MOUNT_UNDER_SCRATCH =
# Fast matching: tests wait for the first job, not for production-sized cycles.
# The *_MIN_INTERVAL floors (5 s by default) override the intervals below them.
SCHEDD_INTERVAL = 2
SCHEDD_MIN_INTERVAL = 1
NEGOTIATOR_INTERVAL = 1
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
UPDATE_INTERVAL = 5
STARTER_UPDATE_INTERVAL = 5
EOF
    # Created from inside the chroot: /var/run and /var/lock there are absolute symlinks to /run,
    # which from the host side would point at the host's own /run.
    local dirs="/run/condor /run/lock/condor /var/log/condor /var/lib/condor/spool /var/lib/condor/execute"
    in_chroot "$CHROOT" mkdir -p $dirs
    in_chroot "$CHROOT" chown condor:condor $dirs
    in_chroot "$CHROOT" chmod 755 $dirs
}

cmd_setup() {
    require_root
    validate_root_path
    with_lock
    mkdir -p "$LOGDIR" "$STATE"
    touch "$MARKER"
    : >>"$LOGDIR/setup.log"
    local t0=$SECONDS
    # A killed session may have left a master or mounts behind: a fresh setup starts from nothing.
    stop_processes
    unmount_all
    probe_mounts
    if [[ "$(cat "$CHROOT/.taucoffea-recipe" 2>/dev/null)" != "$RECIPE" ]]; then
        if [[ -d "$CHROOT" ]]; then
            # Cached chroot with an older package list: top it up in place.
            install_packages "$CHROOT"
        else
            ensure_debootstrap
            build_chroot
        fi
    else
        log "chroot cached at $CHROOT"
    fi
    ensure_users
    configure_condor
    mkdir -p "$SCRATCH"
    chmod 1777 "$SCRATCH"
    log "setup done in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- start / stop

python_query() {
    # Ask the interpreter itself: a pyenv shim or a venv symlink would mislead path arithmetic.
    "${TAUCOFFEA_CONDOR_PYTHON:-python3}" -c "import os, sys; print($1)"
}

python_prefixes() { python_query 'sys.prefix + chr(10) + sys.base_prefix' | sort -u; }

project_dir() { realpath "${TAUCOFFEA_CONDOR_PROJECT:-$SCRIPT_DIR/../..}"; }

bind_sources() {
    # Host dirs visible at the same path inside the chroot, read-only: the project tree, the Python
    # installation(s) that hold taucoffea + parsl, and any extra dirs the caller names.
    project_dir
    python_prefixes
    local IFS=:
    local extra
    for extra in ${TAUCOFFEA_CONDOR_BINDS:-}; do [[ -n "$extra" ]] && realpath "$extra"; done
}

make_mountpoint() {
    # Create $CHROOT$1 with traversable parents *inside the chroot* (the chroot's own /root is 0700,
    # like the host's; opening it to o+x there does not touch the host).
    local path="$1" cur="$CHROOT" part
    local IFS=/
    for part in ${path#/}; do
        cur="$cur/$part"
        [[ -d "$cur" ]] || mkdir "$cur"
        chmod o+x "$cur"
    done
}

bind_dir() {
    # bind_dir HOSTDIR ro|rw
    local src="$1" mode="$2" target="$CHROOT$1"
    make_mountpoint "$src"
    do_mount "$target" --bind "$src" || die 1 "bind mount of $src failed"
    [[ "$mode" == ro ]] && { mount -o remount,bind,ro "$target" || die 1 "read-only remount of $target failed"; }
    return 0
}

start_mounts() {
    do_mount "$CHROOT/proc" -t proc proc || die 1 "mounting proc failed"
    do_mount "$CHROOT/dev" --bind /dev || die 1 "bind mount of /dev failed"
    # The /dev bind does not carry /dev/shm; Parsl workers die in multiprocessing.SemLock without it.
    do_mount "$CHROOT/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs || die 1 "tmpfs on dev/shm failed"
    local src bound=()
    # Sorted, so a parent comes before its children; a source inside an already bound dir (a venv
    # inside the project tree) is visible through its parent and needs no mount of its own.
    while read -r src; do
        [[ -n "$src" ]] || continue
        [[ -d "$src" ]] || die 2 "bind source $src is not a directory"
        [[ "$src" != *[[:space:]]* ]] || die 2 "bind source '$src' contains whitespace (mount tables escape it)"
        case "$src" in
            / | /usr | /usr/lib | /bin | /sbin | /lib | /lib64 | /etc | /var | /dev | /proc | /sys | /run | /boot)
                # e.g. the distribution's own python3 (sys.prefix=/usr): it would hide the chroot's /usr.
                die 2 "cannot bind system directory $src into the chroot; use a Python installed outside /usr (pyenv, conda, uv)" ;;
        esac
        under_any "$src" "${bound[@]}" && continue
        bind_dir "$src" ro
        bound+=("$src")
    done < <(bind_sources | sort -u)
    under_any "$SCRATCH" "${bound[@]}" &&
        die 2 "pool dir $ROOT lies inside read-only bound $(printf '%s ' "${bound[@]}"); choose another TAUCOFFEA_CONDOR_ROOT"
    mkdir -p "$SCRATCH"; chmod 1777 "$SCRATCH"
    bind_dir "$SCRATCH" rw
    printf '%s\n' "${bound[@]}" "$SCRATCH" >"$STATE/binds"
}

under_any() {
    # under_any PATH DIR... : PATH equals or lies below one of the DIRs.
    local path="$1" dir; shift
    for dir in "$@"; do
        [[ "$path" == "$dir" || "$path" == "$dir"/* ]] && return 0
    done
    return 1
}

open_python_path() {
    # The submit user runs this very interpreter. Its prefix is bind-mounted at the same path, so
    # inside the chroot the prefix directory keeps its host mode while its parents are the
    # chroot's own (made traversable by make_mountpoint); a venv made with `mktemp -d` is 0700.
    # Grant traverse on the prefix itself only (o+x: no listing, nothing else made readable),
    # and say so.
    local prefix
    while IFS= read -r prefix; do
        if [[ -d "$prefix" && "$(stat -c %A "$prefix")" != *[xt] ]]; then
            log "making $prefix traversable (chmod o+x) so that the submit user can run its python"
            chmod o+x "$prefix"
        fi
    done < <(python_prefixes)
}

check_submit_user_python() {
    # Fail at start, with the reason, rather than in the first Parsl job: permissions on the bound
    # Python (a 0700 venv) or a shared library the chroot lacks show up here.
    local out exe
    exe="$(python_query 'os.path.abspath(sys.executable)')"
    out="$(as_submit_user run "$SCRATCH" "$exe" -c \
        'import ssl, ctypes, sqlite3, bz2, lzma, zlib, pyexpat, uuid, parsl' 2>&1)" ||
        die 2 "the submit user cannot run the bound Python in the chroot: ${out##*$'\n'}"
}

wait_pool_ready() {
    # Ready = a startd advertises a slot and the schedd answers condor_q.
    local deadline=$((SECONDS + ${1:-60}))
    while ((SECONDS < deadline)); do
        pid_alive "$(cat "$STATE/master.pid")" || die 1 "condor_master died (see $LOGDIR/master.out and $CHROOT/var/log/condor/)"
        if in_chroot "$CHROOT" condor_status -af Name 2>/dev/null | grep -q . &&
           in_chroot "$CHROOT" condor_q -totals >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    die 1 "pool not ready after ${1:-60} s (see $CHROOT/var/log/condor/)"
}

cmd_start() {
    require_root
    validate_root_path
    with_lock
    [[ -f "$CHROOT/.taucoffea-recipe" ]] || die 2 "no pool at $CHROOT: run '$0 setup' first"
    local t0=$SECONDS
    # Always a clean start: stale master/jobs/mounts of a killed session go first, and so does the
    # job queue, whose jobs would otherwise rerun and look for an interchange that no longer exists.
    stop_processes
    unmount_all
    mkdir -p "$STATE" "$LOGDIR"
    cp /etc/hosts "$CHROOT/etc/hosts"
    rm -f "$CHROOT"/var/lib/condor/spool/job_queue.log*
    find "$CHROOT/var/lib/condor/execute" -mindepth 1 -delete 2>/dev/null || true
    # A start that fails half-way leaves nothing mounted or running.
    trap 'stop_processes; unmount_all' EXIT
    start_mounts
    open_python_path
    check_submit_user_python
    setsid chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 CONDOR_CONFIG=/etc/condor/condor_config /usr/sbin/condor_master -f \
        </dev/null >"$LOGDIR/master.out" 2>&1 9>&- &
    echo $! >"$STATE/master.pid"
    wait_pool_ready 60
    trap - EXIT
    log "pool up in $((SECONDS - t0)) s (condor_master pid $(cat "$STATE/master.pid"))"
}

cmd_stop() {
    require_root
    validate_root_path
    [[ -d "$ROOT" ]] || return 0
    with_lock
    stop_processes
    unmount_all
    rm -f "$STATE/binds"
    log "pool stopped"
}

cmd_teardown() {
    cmd_stop
    [[ -d "$ROOT" ]] || return 0
    [[ -f "$MARKER" ]] || die 2 "$ROOT has no $MARKER: refusing to delete a directory pool.sh did not create"
    # Deleting through a live bind mount would delete the host's Python or project: check again.
    [[ -z "$(mounts_under "$ROOT")" ]] || die 1 "mounts remain under $ROOT; not deleting"
    if [[ -f "$ROOT/host-user-created" ]]; then
        userdel "$(cat "$ROOT/host-user-created")" 2>/dev/null || log "userdel failed; remove host user by hand"
    fi
    rm -rf --one-file-system "$ROOT"
    log "removed $ROOT"
}

cmd_status() {
    local master=""
    [[ -f "$STATE/master.pid" ]] && master="$(cat "$STATE/master.pid")"
    echo "pool dir:   $ROOT"
    echo "chroot:     $([[ -f "$CHROOT/.taucoffea-recipe" ]] && echo "ready ($SUITE)" || echo missing)"
    echo "mounts:     $(mounts_under "$CHROOT" | sort | tr '\n' ' ')"
    if pid_alive "$master" && [[ "$(cat "/proc/$master/comm" 2>/dev/null)" == condor_master ]]; then
        echo "master:     running (pid $master)"
        echo "--- condor_status"
        in_chroot "$CHROOT" condor_status || true
        echo "--- condor_q -totals"
        in_chroot "$CHROOT" condor_q -allusers -totals || true
        echo "pool: UP"
        return 0
    fi
    echo "master:     not running"
    echo "pool: DOWN"
    return 1
}

as_submit_user() {
    # as_submit_user run|exec CWD CMD... : CMD as the submit user inside the chroot, clean env.
    local mode="$1" cwd="$2" py_bin var gid; shift 2
    py_bin="$(python_query 'os.path.dirname(os.path.abspath(sys.executable))')"
    local -a envs=(
        "HOME=/home/$SUBMIT_USER" "USER=$SUBMIT_USER" "LOGNAME=$SUBMIT_USER" "LANG=C.UTF-8"
        "PATH=$py_bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "PYTHONPATH=$(project_dir)" "CONDOR_CONFIG=/etc/condor/condor_config"
        "TMPDIR=/tmp" "TAUCOFFEA_CONDOR_SCRATCH=$SCRATCH"
        # What a CondorProvider's worker_init needs: condor jobs start with an almost empty env.
        "TAUCOFFEA_CONDOR_WORKER_INIT=export PATH=$py_bin:\$PATH; export PYTHONPATH=$(project_dir)"
    )
    for var in ${TAUCOFFEA_CONDOR_PASSENV:-}; do
        [[ "$var" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die 2 "TAUCOFFEA_CONDOR_PASSENV: '$var' is not a variable name"
        [[ -n "${!var+x}" ]] && envs+=("$var=${!var}")
    done
    gid="$(in_chroot "$CHROOT" id -g "$SUBMIT_USER")"
    # The command is handed to bash -c as "$@": no quoting is re-interpreted on the way in.
    local -a argv=(chroot --userspec="$SUBMIT_UID:$gid" --groups="$gid" "$CHROOT" /usr/bin/env -i
                   "${envs[@]}" /bin/bash -c 'cd "$0" && exec "$@"' "$cwd" "$@")
    if [[ "$mode" == exec ]]; then
        # The caller's signals (a test's timeout kill) and exit status are the command's own.
        exec "${argv[@]}"
    fi
    "${argv[@]}"
}

cmd_run_as_user() {
    (($# > 0)) || die 2 "run-as-user needs a command"
    require_root
    [[ -f "$STATE/master.pid" ]] || die 2 "pool is not started: run '$0 start' first"
    as_submit_user exec "${TAUCOFFEA_CONDOR_CWD:-$SCRATCH}" "$@"
}

main() {
    local cmd="${1:-}"
    (($# > 0)) && shift
    case "$cmd" in
        setup) cmd_setup ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        teardown) cmd_teardown ;;
        status) cmd_status ;;
        run-as-user) cmd_run_as_user "$@" ;;
        *) die 2 "usage: $0 setup|start|stop|teardown|status|run-as-user CMD..." ;;
    esac
}

main "$@"
