# e2e.sh - sourced by the end-to-end test scripts:
#     . "$(dirname "$0")/e2e.sh"; e2e_start NAME WORKDIR
# gives a fresh, empty WORKDIR as the current folder, lets Open MPI run as
# root and with more ranks than cores (CI runs as root on 2 cores), and
# defines fail MESSAGE (prints "NAME: MESSAGE", exits 1).
e2e_start() {
    e2e_name=$1
    rm -rf "$2"
    mkdir -p "$2"
    cd "$2" || exit 1
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
}
fail() { echo "$e2e_name: $*"; exit 1; }
