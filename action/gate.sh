#!/usr/bin/env bash
# Deploy gate: asks runner-health-exporter whether the primary runner is fit
# to take a deploy and fails over to the secondary when it is not.
#
# The logic of the composite action in ../action.yml, runnable on its own
# (CI runs it against two real exporters: tests/it/gate_action.rs). Needs bash
# and curl, nothing else.
#
#   GATE_PRIMARY_URL=http://runner-1:9101 GATE_SECONDARY_URL=http://runner-2:9101 action/gate.sh
#
# Settings (environment; the action maps its inputs onto them):
#   GATE_PRIMARY_URL      exporter of the primary runner host (required)
#   GATE_SECONDARY_URL    exporter of the secondary runner host (empty: no failover)
#   GATE_PRIMARY_LABEL    runs-on label of the primary runner   (default: primary)
#   GATE_SECONDARY_LABEL  runs-on label of the secondary runner (default: secondary)
#   GATE_ENVIRONMENT      also select runners by environment (?environment=), optional
#   GATE_TIMEOUT          seconds per HTTP request               (default: 5)
#   GATE_RETRIES          extra rounds while the primary is not healthy (default: 2)
#   GATE_RETRY_DELAY      seconds between rounds                 (default: 2)
#   GATE_RUNBOOK_BASE_URL runbooks linked when an exporter cannot be reached
#
# Each round asks both exporters at once: GET URL/health?role=ROLE answers
# 200 (healthy) or 503 (unhealthy, with the diagnosis); anything else
# (refused, timed out, another status, an answer that is not a health
# report) counts as unreachable, and unreachable is not healthy. The primary
# wins as soon as it is healthy; after the last round the secondary wins if
# it is healthy. Then each answering exporter is asked once more for its
# report as Markdown (?format=markdown; older exporters answer 400 and their
# plain-text report is shown instead) for the step summary.
#
# Worst case, every request timing out: (retries + 1) * timeout
# + retries * delay + timeout = 3*5 + 2*2 + 5 = 24 s with the defaults.
#
# Writes the outputs role, label, healthy, diagnosis and runbook to
# $GITHUB_OUTPUT and the report to $GITHUB_STEP_SUMMARY when they are set
# (and prints the outputs as name=value lines either way). Exits 0 when a
# role is healthy, 1 when none is (with ::error:: lines naming each root
# cause and its runbook), 2 on bad settings.
set -euo pipefail

DEFAULT_RUNBOOKS="https://github.com/runner-health-exporter/runner-health-exporter/blob/main/docs/runbooks"

primary_url=${GATE_PRIMARY_URL:-}
secondary_url=${GATE_SECONDARY_URL:-}
primary_label=${GATE_PRIMARY_LABEL:-primary}
secondary_label=${GATE_SECONDARY_LABEL:-secondary}
environment=${GATE_ENVIRONMENT:-}
timeout=${GATE_TIMEOUT:-5}
retries=${GATE_RETRIES:-2}
delay=${GATE_RETRY_DELAY:-2}
runbook_base=${GATE_RUNBOOK_BASE_URL:-$DEFAULT_RUNBOOKS}
runbook_base=${runbook_base%/}

usage_error() {
    echo "gate.sh: $*" >&2
    echo "::error title=Deploy gate misconfigured::$(escape_data "$*")"
    exit 2
}

# Workflow command escaping (the message part, and property values).
escape_data() {
    local s=$1
    s=${s//'%'/'%25'}
    s=${s//$'\r'/'%0D'}
    s=${s//$'\n'/'%0A'}
    printf '%s' "$s"
}
escape_property() {
    local s
    s=$(escape_data "$1")
    s=${s//':'/'%3A'}
    s=${s//','/'%2C'}
    printf '%s' "$s"
}

# A URL as it may be shown: without user:password@.
display_url() {
    local u=$1
    if [[ $u =~ ^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@(.*)$ ]]; then
        u="${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
    fi
    printf '%s' "$u"
}

number='^[0-9]+([.][0-9]+)?$'
[[ -n $primary_url ]] || usage_error "GATE_PRIMARY_URL (input primary-url) is empty"
[[ $timeout =~ $number && ! $timeout =~ ^0+([.]0*)?$ ]] || usage_error "timeout must be a positive number of seconds, not '$timeout'"
[[ $retries =~ ^[0-9]+$ ]] || usage_error "retries must be a whole number, not '$retries'"
[[ $delay =~ $number ]] || usage_error "retry delay must be a number of seconds, not '$delay'"
[[ $environment =~ ^[A-Za-z0-9._-]*$ ]] || usage_error "environment may only contain letters, digits, '.', '_' and '-', not '$environment'"
for u in "$primary_url" "$secondary_url"; do
    [[ -z $u || $u =~ ^https?:// ]] || usage_error "exporter URL must start with http:// or https://: '$(display_url "$u")'"
done
command -v curl >/dev/null || usage_error "curl is not installed on this runner"

roles=(primary)
[[ -n $secondary_url ]] && roles+=(secondary)
declare -A url=([primary]=${primary_url%/} [secondary]=${secondary_url%/})
declare -A label=([primary]=$primary_label [secondary]=$secondary_label)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

started=${EPOCHREALTIME/,/.}

health_url() { # role [format]
    local q="role=$1"
    [[ -n $environment ]] && q+="&environment=$environment"
    [[ -n ${2:-} ]] && q+="&format=$2"
    printf '%s/health?%s' "${url[$1]}" "$q"
}

# GET into $work/NAME.body; the HTTP status (000: no answer) into NAME.code,
# curl's complaint into NAME.err.
fetch() { # name url accept
    local code
    code=$(curl --silent --show-error --max-time "$timeout" --connect-timeout "$timeout" \
        --header "Accept: $3" --output "$work/$1.body" --write-out '%{http_code}' \
        "$2" 2>"$work/$1.err") || true
    [[ $code =~ ^[0-9]{3}$ ]] || code=000
    printf '%s' "$code" >"$work/$1.code"
}

declare -A verdict detail
# verdict: healthy | unhealthy | unreachable; detail: one line saying why.
classify() { # role
    local role=$1 code first err
    code=$(<"$work/$role.code")
    first=""
    if [[ -s $work/$role.body ]]; then
        IFS= read -r first <"$work/$role.body" || true
    fi
    case $code in
        200 | 503)
            if [[ $code == 200 && $first == "HEALTHY ("* ]]; then
                verdict[$role]=healthy
                detail[$role]="healthy (HTTP 200)"
            elif [[ $code == 503 && $first == "UNHEALTHY ("* ]]; then
                verdict[$role]=unhealthy
                detail[$role]="unhealthy (HTTP 503)"
            else
                verdict[$role]=unreachable
                detail[$role]="HTTP $code but not a health report (first line: ${first:0:80})"
            fi
            ;;
        000)
            err=$(<"$work/$role.err")
            err=${err//$'\n'/ }
            err=${err:0:300}
            verdict[$role]=unreachable
            detail[$role]="no answer: ${err:-connection failed}"
            ;;
        *)
            verdict[$role]=unreachable
            detail[$role]="HTTP $code (the exporter answers 200 or 503)"
            ;;
    esac
}

probe_round() {
    local role
    for role in "${roles[@]}"; do
        fetch "$role" "$(health_url "$role")" "text/plain" &
    done
    wait
    for role in "${roles[@]}"; do
        classify "$role"
    done
}

round=0
while :; do
    round=$((round + 1))
    probe_round
    line="round $round:"
    for role in "${roles[@]}"; do
        line+=" $role ${detail[$role]};"
    done
    echo "${line%;}"
    [[ ${verdict[primary]} == healthy ]] && break
    ((round > retries)) && break
    echo "primary not healthy; asking again in ${delay}s"
    sleep "$delay"
done

# The diagnoses of one role's report: for each unhealthy runner, its cause
# (title), summary and runbook, from the plain-text format of /health:
#   runner NAME  role=...   /  Diagnosis: TITLE / SUMMARY / Fix: ... / Runbook: URL
declare -A cause runbook summary
diagnose() { # role
    local role=$1 line runner="" title="" sum="" fix="" book="" next="" message="" n=0
    local causes="" books="" sums=""
    if [[ ${verdict[$role]} == unreachable ]]; then
        cause[$role]="Exporter unreachable (${detail[$role]})"
        runbook[$role]="$runbook_base/exporter-down.md"
        summary[$role]="$(display_url "${url[$role]}") gave no health report."
        return
    fi
    flush() {
        if [[ -n $title ]]; then
            causes+="${causes:+; }$title (runner $runner)"
            sums+="${sums:+; }$runner: $sum${fix:+. Fix: $fix}"
            [[ -n $book && $books != *"$book"* ]] && books+="${books:+ }$book"
        fi
        title="" sum="" fix="" book=""
    }
    while IFS= read -r line; do
        n=$((n + 1))
        if ((n == 2)) && [[ -n $line && $line != runner\ * ]]; then
            message=$line
        fi
        case $line in
            "runner "*)
                flush
                runner=${line#runner }
                runner=${runner%% *}
                ;;
            "  Diagnosis: "*)
                title=${line#  Diagnosis: }
                next=summary
                ;;
            "    Fix:"*)
                fix=${line#    Fix:}
                fix=${fix#"${fix%%[! ]*}"}
                ;;
            "    Runbook:"*)
                book=${line#    Runbook:}
                book=${book#"${book%%[! ]*}"}
                ;;
            "    "*)
                if [[ $next == summary ]]; then
                    sum=${line#    }
                    next=""
                fi
                ;;
        esac
    done <"$work/$role.body"
    flush
    if [[ -z $causes ]]; then
        # No runner diagnosed: the selection matched none, or it only warns.
        causes=${message:-no diagnosis in the report}
        [[ -n $message ]] && sums="$(display_url "${url[$role]}") has no runner with role=$role${environment:+ and environment=$environment}"
        books="$runbook_base/README.md"
    fi
    cause[$role]=$causes
    runbook[$role]=$books
    summary[$role]=$sums
}

chosen=""
if [[ ${verdict[primary]} == healthy ]]; then
    chosen=primary
elif [[ -n $secondary_url && ${verdict[secondary]} == healthy ]]; then
    chosen=secondary
fi
for role in "${roles[@]}"; do
    [[ ${verdict[$role]} == healthy ]] || diagnose "$role"
done
# Seconds since start with three decimals (EPOCHREALTIME has six: no bc).
seconds_since_start() {
    local now=${EPOCHREALTIME/,/.} ms
    ms=$(((10#${now/./} - 10#${started/./}) / 1000))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}
elapsed=$(seconds_since_start)

# The reports for the summary: Markdown from the exporter when it can, else
# its plain text in a code block. Asked only of exporters that answered.
for role in "${roles[@]}"; do
    [[ ${verdict[$role]} == unreachable ]] && continue
    fetch "$role.md" "$(health_url "$role" markdown)" "text/markdown" &
done
wait
report_of() { # role
    local role=$1 expect
    if [[ ${verdict[$role]} == unreachable ]]; then
        printf 'No report: %s.\n' "${detail[$role]}"
        return
    fi
    expect=503
    [[ ${verdict[$role]} == healthy ]] && expect=200
    if [[ $(<"$work/$role.md.code") == "$expect" ]]; then
        cat "$work/$role.md.body"
        echo
    else
        # 400: an exporter without ?format=markdown. Any other answer (or a
        # verdict that changed in between): the report the decision saw.
        echo '```text'
        cat "$work/$role.body"
        echo '```'
    fi
}

cell() { # Markdown table cell text
    local s=${1//|/\\|}
    printf '%s' "${s//$'\n'/ }"
}

summary_md() {
    local role
    if [[ -n $chosen ]]; then
        printf '## Deploy gate: %s (%s)\n\n' "$chosen" "\`${label[$chosen]}\`"
        if [[ $chosen == secondary ]]; then
            printf 'The primary is not healthy (%s), so the deploy fails over to the **secondary**.\n\n' "$(cell "${cause[primary]}")"
        else
            printf 'The **primary** is healthy: the deploy runs there.\n\n'
        fi
    else
        printf '## Deploy gate: no healthy runner\n\n'
        printf 'The deploy cannot run: no role is healthy.\n\n'
    fi
    printf '| Role | Label | Exporter | Verdict | Root cause | Runbook |\n|---|---|---|---|---|---|\n'
    for role in "${roles[@]}"; do
        local c="" b="" u links=()
        if [[ ${verdict[$role]} != healthy ]]; then
            c=$(cell "${cause[$role]}")
            read -ra links <<<"${runbook[$role]}"
            for u in "${links[@]}"; do b+="${b:+ }[${u##*/}]($u)"; done
        fi
        printf '| %s%s | %s | %s | %s | %s | %s |\n' "$role" "$([[ $role == "$chosen" ]] && echo ' (chosen)')" \
            "\`$(cell "${label[$role]}")\`" "$(cell "$(display_url "${url[$role]}")")" \
            "${verdict[$role]}" "$c" "$b"
    done
    printf '\nDecided in %s s after %s round(s) (timeout %s s, retries %s, delay %s s).\n' \
        "$elapsed" "$round" "$timeout" "$retries" "$delay"
    for role in "${roles[@]}"; do
        printf '\n### %s: %s\n\n' "$role" "$(display_url "${url[$role]}")"
        report_of "$role"
    done
}

if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
    summary_md >>"$GITHUB_STEP_SUMMARY"
fi

set_output() { # name value
    local delim
    printf '%s=%s\n' "$1" "${2//$'\n'/ | }"
    [[ -n ${GITHUB_OUTPUT:-} ]] || return 0
    if [[ $2 == *$'\n'* ]]; then
        delim="gate_eof_$RANDOM$RANDOM"
        while [[ $2 == *"$delim"* ]]; do delim+=$RANDOM; done
        printf '%s<<%s\n%s\n%s\n' "$1" "$delim" "$2" "$delim" >>"$GITHUB_OUTPUT"
    else
        printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
    fi
}

diagnosis=""
books=""
for role in "${roles[@]}"; do
    [[ ${verdict[$role]} == healthy ]] && continue
    diagnosis+="${diagnosis:+$'\n'}$role: ${cause[$role]}. ${summary[$role]} Runbook: ${runbook[$role]}"
    [[ -z $books ]] && books=${runbook[$role]%% *}
done

if [[ -n $chosen ]]; then
    if [[ $chosen == secondary ]]; then
        echo "::warning title=$(escape_property "Deploy gate: failing over to the secondary")::$(escape_data "primary: ${cause[primary]} - runbook: ${runbook[primary]}")"
    elif [[ -n $secondary_url && ${verdict[secondary]} != healthy ]]; then
        echo "::warning title=$(escape_property "Deploy gate: no failover available")::$(escape_data "secondary: ${cause[secondary]} - runbook: ${runbook[secondary]}")"
    fi
    echo "deploying on $chosen (label ${label[$chosen]}), decided in ${elapsed}s"
    set_output role "$chosen"
    set_output label "${label[$chosen]}"
    set_output healthy true
else
    for role in "${roles[@]}"; do
        echo "::error title=$(escape_property "Deploy gate: $role not healthy")::$(escape_data "$role: ${cause[$role]} - runbook: ${runbook[$role]}")"
    done
    echo "no healthy runner for the deploy, decided in ${elapsed}s"
    set_output role ""
    set_output label ""
    set_output healthy false
fi
set_output diagnosis "$diagnosis"
set_output runbook "$books"
[[ -n $chosen ]] || exit 1
