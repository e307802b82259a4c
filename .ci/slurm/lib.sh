# Shared by up.sh and down.sh (sourced).

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
