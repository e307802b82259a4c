# Shared by up.sh and down.sh (sourced; each defines log).

# pid_of NAME PIDFILE: print the pid if the process in PIDFILE is alive and is NAME
pid_of() {
    local name=$1 pf=$2 pid comm
    [[ -s $pf ]] || return 1
    pid=$(tr -dc 0-9 <"$pf")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
    echo "$pid"
}

# stop LIMIT NAME PIDFILE [NAME PIDFILE ...]: SIGTERM to all of them at once, wait for each, SIGKILL after LIMIT s
stop() {
    local limit=$1 name pid i; shift
    local -a names=() pids=()
    while (($# >= 2)); do
        if pid=$(pid_of "$1" "$2"); then
            kill -TERM "$pid" 2>/dev/null && { names+=("$1"); pids+=("$pid"); }
        fi
        shift 2
    done
    for i in "${!pids[@]}"; do
        name=${names[$i]} pid=${pids[$i]}
        local n
        for ((n = 0; n < limit * 10; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name ($pid) ignored SIGTERM for ${limit} s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
            for ((n = 0; n < 50; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && { log "WARNING: $name ($pid) still alive"; continue; }
        fi
        log "stopped $name ($pid)"
    done
}
