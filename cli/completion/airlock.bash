# bash completion for airlock(1)                         -*- shell-script -*-
#
# Subcommands and options come from the programs' own --help, read when
# completing (local and quick: no network, no daemon), so this file has no
# list to keep in step with the CLI. Session ids are offered only when
# AIRLOCK_API_KEY is set (the user's own configuration says which airlockd
# to ask): `airlock session ls` against AIRLOCK_URL, for at most 2 seconds.

# _airlock_help PROG ARGS...: PROG ARGS... --help, cached for the shell's
# life per command line.
_airlock_help()
{
    local key="$*" i
    for ((i = 0; i < ${#_airlock_help_keys[@]}; i++)); do
        if [[ ${_airlock_help_keys[i]} == "$key" ]]; then
            printf '%s\n' "${_airlock_help_vals[i]}"
            return
        fi
    done
    local text
    text=$(LC_ALL=C "$@" --help 2>/dev/null)
    _airlock_help_keys+=("$key")
    _airlock_help_vals+=("$text")
    printf '%s\n' "$text"
}

# The long options in the text on stdin.
_airlock_opts()
{
    command grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# The words of the usage entries in the text on stdin: field N of each line
# that starts with two spaces and a lower-case word.
_airlock_words()
{
    command awk -v n="$1" '/^  [a-z]/ && $1 !~ /^-/ { print $n }' | sort -u
}

# The usage entry "  WORD1 WORD2 ..." (and its continuation lines) of the
# text on stdin.
_airlock_entry()
{
    command awk -v w="$1" '
        /^  [^ ]/ { on = ($1 " " $2 == w || $1 == w) }
        on { print }'
}

_airlock_session_ids()
{
    [[ -n ${AIRLOCK_API_KEY-} ]] || return
    command timeout 2 "$1" session ls 2>/dev/null | command awk 'NR > 1 { print $1 }'
}

_airlock()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local prog=${COMP_WORDS[0]} cmd=${COMP_WORDS[1]-} words
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        words="$(_airlock_help "$prog" | _airlock_words 1) --help --version"
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return
    fi
    # options that take a file or directory
    case $prev in
    --settings | --config | --state-dir | --allow-write | --deny-read | --decision-log | \
        --store | --master-key | --key | --private-key | --ca-file | --policy | --log)
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    esac
    case $cmd in
    run | doctor | up)
        if [[ $cur == -* ]]; then
            words=$(_airlock_help "$prog" "$cmd" | _airlock_opts)
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
        elif [[ $cmd == run ]]; then
            COMPREPLY=($(compgen -c -- "$cur"))
        fi
        ;;
    session)
        local sub=${COMP_WORDS[2]-}
        if ((COMP_CWORD == 2)); then
            words=$(_airlock_help "$prog" session | _airlock_words 1)
            COMPREPLY=($(compgen -W "$words --help" -- "$cur"))
        elif [[ $cur == -* ]]; then
            words=$(_airlock_help "$prog" session | _airlock_entry "$sub" | _airlock_opts)
            COMPREPLY=($(compgen -W "$words --help" -- "$cur"))
        elif ((COMP_CWORD == 3)) && [[ $sub != create && $sub != ls && $sub != events ]]; then
            COMPREPLY=($(compgen -W "$(_airlock_session_ids "$prog")" -- "$cur"))
            if [[ $sub == cp ]]; then
                COMPREPLY+=($(compgen -f -- "$cur"))
            fi
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        ;;
    creds | token | key | admin)
        local sub=${COMP_WORDS[2]-} help
        if [[ $cmd == admin ]]; then
            help=$(_airlock_help "$prog" admin)
        else
            help=$(_airlock_help "$prog" "$cmd" | _airlock_entry "$cmd")
            [[ -n $help ]] || help=$(_airlock_help "$prog" creds | _airlock_entry "$cmd")
        fi
        if ((COMP_CWORD == 2)); then
            if [[ $cmd == admin ]]; then
                words=$(printf '%s\n' "$help" | _airlock_words 1)
            else
                words=$(printf '%s\n' "$help" | _airlock_words 2)
            fi
            COMPREPLY=($(compgen -W "$words --help" -- "$cur"))
        elif ((COMP_CWORD == 3)) && [[ $cmd == admin && $cur != -* ]]; then
            words=$(printf '%s\n' "$help" | command awk -v s="$sub" '/^  [a-z]/ && $1 == s { print $2 }')
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
        elif [[ $cur == -* ]]; then
            local entry
            if [[ $cmd == admin ]]; then
                entry=$(printf '%s\n' "$help" | _airlock_entry "$sub ${COMP_WORDS[3]-}")
                # the options every admin command takes
                entry+=$'\n'$(printf '%s\n' "$help" | command grep -E '^  --')
            else
                entry=$(printf '%s\n' "$help" | _airlock_entry "$cmd $sub")
            fi
            words=$(printf '%s\n' "$entry" | _airlock_opts)
            COMPREPLY=($(compgen -W "$words --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        ;;
    esac
}
complete -F _airlock airlock
