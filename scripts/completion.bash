# Tab completion for `python -m snn_repro ...`: config groups, their options and keys, from Hydra's own completion.
# Enable in this shell (or add the line to ~/.bashrc):   source scripts/completion.bash
# Hydra's installer (`-sc install=bash`) only knows `python app.py` and executables, not `python -m`; the query goes to
# hydra_plugins/snn_repro_plugins/nested_completion.py, which also offers `+experiment=<paper>/<row>`.
_snn_repro_complete() {
    local words=($COMP_LINE)
    if [[ "${words[1]}" != "-m" || "${words[2]}" != "snn_repro" ]]; then
        return 0  # another python command: the default (file name) completion applies
    fi
    local rest=${COMP_LINE#*snn_repro}
    local choices
    choices=$(COMP_LINE="snn_repro${rest}" "${words[0]}" -m snn_repro -sc query=snn_repro_bash 2>/dev/null)
    local word=""
    [[ "${COMP_LINE: -1}" != " " ]] && word=${words[${#words[@]}-1]}
    COMPREPLY=($(compgen -o nospace -o default -W "$choices" -- "$word"))
}
COMP_WORDBREAKS=${COMP_WORDBREAKS//=}
complete -o nospace -o default -F _snn_repro_complete python python3 .venv/bin/python
