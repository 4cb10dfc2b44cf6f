# Host-side fixture for the sandbox attack suite; sourced by run_case.sh and
# control.sh. fixture_setup BASE ATTACK makes, in a fresh dir under BASE:
#   $FX_HOME   fake home: .ssh/id_ed25519, .aws/credentials (secret marker), .bashrc
#   $FX_WS     workspace: git repo with .git/hooks, .git/config, .bashrc
#   $FX_TMP/outside.txt   a file outside the workspace
#   $FX_TMP/suid-attack   setuid-root copy of the attack binary
# and starts the fixture listeners (abstract socket, a socket under /run, a
# socket in $FX_TMP, 127.0.0.1 TCP, SysV shm/msg/sem). FX_ARGS holds the
# KEY=VALUE arguments that tell the attack about them. fixture_teardown
# stops the listeners and removes everything.

FX_MARKER=AIRLOCKMARKER

fixture_setup() {
    local base=$1 attack=$2 label=${3:-fx}
    mkdir -p "$base" || return 1
    FX_TMP=$(mktemp -d "$base/$label.XXXXXX") || return 1
    FX_ID=${FX_TMP##*/}
    FX_ID=${FX_ID//[^A-Za-z0-9]/-}
    FX_HOME=$FX_TMP/home
    FX_WS=$FX_TMP/ws
    (cd "$FX_TMP" && mkdir -p home/.ssh home/.aws home/.gnupg/private-keys-v1.d home/.kube \
        home/.docker home/.config/gh home/.config/gcloud home/.azure ws/sub \
        ws/nested/repo/.git/hooks ws/nested/repo/.git/objects ws/nested/repo/.git/refs) ||
        return 1
    printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\n%s-ssh\n' "$FX_MARKER" >"$FX_HOME/.ssh/id_ed25519"
    printf -- '-----BEGIN RSA PRIVATE KEY-----\n%s-rsa\n' "$FX_MARKER" >"$FX_HOME/.ssh/id_rsa"
    chmod 600 "$FX_HOME/.ssh/id_ed25519" "$FX_HOME/.ssh/id_rsa"
    printf '[default]\naws_secret_access_key = %s-aws\n' "$FX_MARKER" >"$FX_HOME/.aws/credentials"
    echo '# host home bashrc' >"$FX_HOME/.bashrc"
    local f
    for f in .gnupg/private-keys-v1.d/key.key .kube/config .docker/config.json .netrc \
        .git-credentials .config/gh/hosts.yml .config/gcloud/credentials.db \
        .azure/accessTokens.json .npmrc .pypirc; do
        echo "secret $FX_MARKER-$f" >"$FX_HOME/$f"
    done
    echo 'outside the workspace' >"$FX_TMP/outside.txt"
    # One real `git init`; the nested repository and the submodule's git dir
    # are made by hand (what protection looks at: names, hooks/, config).
    git init -q "$FX_WS" || return 1
    echo '# workspace bashrc' >"$FX_WS/.bashrc"
    mkdir -p "$FX_WS/.git/modules/lib/hooks"
    echo '# sub bashrc' >"$FX_WS/sub/.bashrc"
    printf '[core]\n\trepositoryformatversion = 0\n' >"$FX_WS/nested/repo/.git/config"
    echo 'ref: refs/heads/main' >"$FX_WS/nested/repo/.git/HEAD"
    printf '[core]\n\tbare = false\n' >"$FX_WS/.git/modules/lib/config"
    # Admin dir of a linked worktree (as `git worktree add` makes it).
    mkdir -p "$FX_WS/.git/worktrees/wt"
    echo ../.. >"$FX_WS/.git/worktrees/wt/commondir"
    echo "$FX_TMP/wt/.git" >"$FX_WS/.git/worktrees/wt/gitdir"
    echo 'ref: refs/heads/wt' >"$FX_WS/.git/worktrees/wt/HEAD"
    FX_SHM=/dev/shm/airlock-attack-$FX_ID
    echo "shared $FX_MARKER" >"$FX_SHM"
    cp "$attack" "$FX_TMP/suid-attack" && chmod 4755 "$FX_TMP/suid-attack" || return 1

    FX_IPCKEY=$(printf '0x%x' $(((RANDOM << 15 | RANDOM) + 0x10000)))
    FX_RUNSOCK=/run/airlock-attack-$FX_ID.sock
    exec {FX_FD}< <(exec "$attack" fixture "abstract=airlock-attack-$FX_ID" \
        "runsock=$FX_RUNSOCK" "rosock=$FX_TMP/host.sock" "ipckey=$FX_IPCKEY" \
        "fixture-tag-$FX_ID")
    FX_PID=$!
    local ready=
    read -r ready <&"$FX_FD"
    exec {FX_FD}<&-
    case $ready in
    READY*) ;;
    *)
        echo "fixture did not start" >&2
        return 1
        ;;
    esac
    FX_TCPPORT=${ready#*tcpport=}
    FX_TCPPORT=${FX_TCPPORT%% *}
    FX_ARGS=("home=$FX_HOME" "outside=$FX_TMP/outside.txt" "suid=$FX_TMP/suid-attack"
        "hostpid=$FX_PID" "hosttag=$FX_ID" "abstract=airlock-attack-$FX_ID"
        "runsock=$FX_RUNSOCK" "rosock=$FX_TMP/host.sock" "tcpport=$FX_TCPPORT"
        "ipckey=$FX_IPCKEY")
    FX_HOSTNAME=$(hostname)
    FX_SNAPSHOT=$(fixture_snapshot)
    return 0
}

# Everything on the host an escaped attack could have changed.
fixture_snapshot() {
    (
        cd "$FX_TMP" &&
            sha256sum home/.ssh/id_ed25519 home/.ssh/id_rsa home/.aws/credentials \
                home/.bashrc outside.txt ws/.git/config ws/.bashrc ws/sub/.bashrc \
                ws/nested/repo/.git/config ws/.git/modules/lib/config \
                ws/.git/worktrees/wt/commondir 2>&1
        ls -a ws/.git/hooks ws/nested/repo/.git/hooks ws/.git/modules/lib/hooks 2>&1
        # Protected names the workspace did not have (no placeholder may
        # stay), and what escaped writes would leave.
        ls -d ws/.vscode ws/.idea ws/.mcp.json ws/.gitmodules ws/.zshrc ws/.profile \
            ws/.bash_profile ws/.envrc ws/.claude ws/sub/.zshrc ws/.git/commondir \
            ws/.git/worktrees/wt/config.worktree ws/nested-airlock-attack "$FX_SHM"* \
            /etc/airlock-attack* /usr/airlock-attack* "$FX_HOME"/airlock-attack* \
            "$FX_TMP"/airlock-attack* 2>/dev/null
        true
    )
}

# Fails (printing what changed) if an attack reached the host.
fixture_check_host() {
    local bad=0 now
    now=$(fixture_snapshot)
    if [ "$now" != "$FX_SNAPSHOT" ]; then
        echo "HOST CHANGED: files outside the sandbox differ:"
        diff <(echo "$FX_SNAPSHOT") <(echo "$now")
        bad=1
    fi
    if [ "$(hostname)" != "$FX_HOSTNAME" ]; then
        echo "HOST CHANGED: hostname is now $(hostname)"
        hostname "$FX_HOSTNAME"
        bad=1
    fi
    if ! kill -0 "$FX_PID" 2>/dev/null; then
        echo "HOST CHANGED: host fixture process $FX_PID was killed"
        bad=1
    fi
    return $bad
}

fixture_teardown() {
    if [ -n "${FX_PID:-}" ]; then
        kill -TERM "$FX_PID" 2>/dev/null
        wait "$FX_PID" 2>/dev/null
    fi
    # Leftovers of an escape; only names the attack itself uses.
    rm -rf /etc/airlock-attack /etc/airlock-attack.d /etc/airlock-attack-symlink \
        /usr/airlock-attack
    rm -f "${FX_RUNSOCK:-/nonexistent}" "${FX_SHM:-/nonexistent}" "${FX_SHM:-/nonexistent}"-*
    [ -n "${FX_TMP:-}" ] && rm -rf "$FX_TMP"
}
