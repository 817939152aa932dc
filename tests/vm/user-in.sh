# user-in.sh CGROUP_DIR keep|exec COMMAND [ARG...]   (run by root, with sh)
#
# Moves this shell into CGROUP_DIR (absolute path under /sys/fs/cgroup), becomes
# the ordinary user 1000 with its own environment and runs COMMAND:
#   keep  a uid-1000 shell stays in CGROUP_DIR as COMMAND's parent (a login
#         session: the runner is not alone in its cgroup)
#   exec  COMMAND replaces the shell and is alone in CGROUP_DIR (the shape that
#         `systemd-run --user --scope COMMAND` gives)
# No setuid bit, no capability and no_new_privs: see asuser.c.
dir=$1 mode=$2
shift 2
echo $$ > "$dir/cgroup.procs" || { echo "user-in: cannot move into $dir" >&2; exit 125; }
export HOME=/home/user USER=user LOGNAME=user
export XDG_STATE_HOME=/home/user/.local/state XDG_CONFIG_HOME=/home/user/.config
unset XDG_RUNTIME_DIR
cd /home/user || exit 125
case $mode in
  exec) exec /usr/local/bin/cronrun-vm-asuser 1000 1000 "$@" ;;
  keep) exec /usr/local/bin/cronrun-vm-asuser 1000 1000 /bin/sh -c '"$@"; exit $?' sh "$@" ;;
  *) echo "user-in: mode must be keep or exec" >&2; exit 125 ;;
esac
