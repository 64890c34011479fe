# openwrt-userland stand-in for /lib/functions/procd.sh: what an init script calls to describe
# its service to procd, sent as `ubus call service set|delete|event` to the ubus/procd stand-in
# (/bin/ubus). See tests/package/README.md.
#
# One difference from the real file: the service message is a tab-separated line format rather
# than JSON built with jshn (the stand-in root has no JSON tools); /bin/ubus reads that format.
#   name NAME | script PATH | instance NAME | param INSTANCE TYPE VALUE... |
#   trigger TYPE PACKAGE SCRIPT ACTION | validate KEY VALUE

_PROCD_MSG=
_PROCD_INSTANCE=
_PROCD_INSTANCE_SEQ=0
_procd_trigger_open=0
_procd_validate_open=0

_procd_line() {   # _procd_line FIELD...: one tab-separated line of the message
	local IFS='	'
	printf '%s\n' "$*" >>"$_PROCD_MSG"
}

procd_open_service() {   # procd_open_service NAME [SCRIPT]
	_PROCD_MSG=$(mktemp /tmp/procd-msg.XXXXXX)
	_PROCD_INSTANCE_SEQ=0
	_procd_line name "$1"
	[ -n "$2" ] && _procd_line script "$2"
	return 0
}

procd_close_service() {   # sends the service (and its triggers) to procd: ubus call service set
	procd_open_trigger
	service_triggers
	procd_close_trigger
	ubus call service "${1:-set}" "$(cat "$_PROCD_MSG")"
	rm -f "$_PROCD_MSG"
	_PROCD_MSG=
}

procd_open_instance() {
	_PROCD_INSTANCE_SEQ=$((_PROCD_INSTANCE_SEQ + 1))
	_PROCD_INSTANCE="${1:-instance$_PROCD_INSTANCE_SEQ}"
	_procd_line instance "$_PROCD_INSTANCE"
}

# procd_set_param TYPE VALUE...: replaces the instance's TYPE (command, respawn, file, stdout,
# stderr, term_timeout, env, data, ...).
procd_set_param() {
	local type="$1"
	awk -F '\t' -v i="$_PROCD_INSTANCE" -v t="$type" '!($1 == "param" && $2 == i && $3 == t)' \
		"$_PROCD_MSG" >"$_PROCD_MSG.new" && mv "$_PROCD_MSG.new" "$_PROCD_MSG"
	_procd_line param "$_PROCD_INSTANCE" "$@"
}

procd_append_param() {   # procd_append_param TYPE VALUE...: adds values to TYPE
	local type="$1" old
	shift
	old=$(awk -F '\t' -v i="$_PROCD_INSTANCE" -v t="$type" \
		'$1 == "param" && $2 == i && $3 == t { sub(/^[^\t]*\t[^\t]*\t[^\t]*\t?/, ""); print }' "$_PROCD_MSG")
	if [ -z "$old" ]; then
		procd_set_param "$type" "$@"
		return
	fi
	awk -F '\t' -v i="$_PROCD_INSTANCE" -v t="$type" '!($1 == "param" && $2 == i && $3 == t)' \
		"$_PROCD_MSG" >"$_PROCD_MSG.new" && mv "$_PROCD_MSG.new" "$_PROCD_MSG"
	local IFS='	'
	printf 'param\t%s\t%s\t%s\t%s\n' "$_PROCD_INSTANCE" "$type" "$old" "$*" >>"$_PROCD_MSG"
}

procd_close_instance() {
	# `procd_set_param respawn` without values: the defaults of system.@service[0], else 3600 5 5
	if grep -q "^param	$_PROCD_INSTANCE	respawn\$" "$_PROCD_MSG"; then
		procd_set_param respawn 3600 5 5
	fi
	_PROCD_INSTANCE=
}

procd_open_trigger() { _procd_trigger_open=$((_procd_trigger_open + 1)); }
procd_close_trigger() { _procd_trigger_open=$((_procd_trigger_open - 1)); }

# procd_add_reload_trigger PACKAGE...: on config.change for PACKAGE procd runs
# `/etc/init.d/NAME reload` (fact 7).
procd_add_reload_trigger() {
	local script name file
	script=$(readlink "$initscript")
	name=$(basename "${script:-$initscript}")
	for file in "$@"; do
		_procd_line trigger config.change "$file" "/etc/init.d/$name" reload
	done
}

procd_add_config_trigger() {   # procd_add_config_trigger config.change PACKAGE SCRIPT ARGS...
	_procd_line trigger "$@"
}

# procd_add_validation FUNCTION: FUNCTION is called without a section, so validate_data prints
# the option -> datatype table (as json_add_* calls) that procd keeps for `ubus call service
# validate`.
procd_add_validation() {
	_procd_validate_open=1
	"$@"
	_procd_validate_open=0
}
json_add_object() { :; }
json_close_object() { :; }
json_add_string() {
	[ "$_procd_validate_open" = 1 ] && _procd_line validate "$1" "$2"
	return 0
}

procd_kill() {   # procd_kill SERVICE [INSTANCE]: the service leaves procd (instances stopped)
	if [ -n "$2" ]; then
		ubus call service delete "{ \"name\": \"$1\", \"instance\": \"$2\" }"
	else
		ubus call service delete "{ \"name\": \"$1\" }"
	fi
}

procd_running() {   # procd_running SERVICE [INSTANCE]
	ubus call service list "{ \"name\": \"$1\" }" 2>/dev/null \
		| grep -q "^instance	${2:-[^	]*}	running	true"
}

procd_set_config_changed() {   # procd_set_config_changed PACKAGE
	ubus call service event "{ \"type\": \"config.change\", \"data\": { \"package\": \"$1\" } }"
}

# uci_validate_section PACKAGE TYPE SECTION 'option:datatype[:default]'...: as the real one,
# runs validate_data and evals its assignments (each option set to its value when valid, to
# the default when unset, unset when invalid); returns non-zero if any option was invalid,
# and then lets validate_data's verdicts reach stderr.
uci_validate_section() {
	local _package="$1" _type="$2" _name="$3" _result _error
	shift 3
	_result=$(/sbin/validate_data "$_package" "$_type" "$_name" "$@" 2>/dev/null)
	_error=$?
	eval "$_result"
	[ "$_error" = 0 ] || /sbin/validate_data "$_package" "$_type" "$_name" "$@" >/dev/null
	return $_error
}

# uci_load_validate PACKAGE TYPE SECTION FUNCTION 'option:datatype[:default]'...: declares the
# options local, validates them, then calls FUNCTION SECTION RESULT (RESULT 0: all valid).
uci_load_validate() {
	local _package="$1" _type="$2" _name="$3" _function="$4" _option _result
	shift 4
	for _option in "$@"; do
		eval "local ${_option%%:*}"
	done
	uci_validate_section "$_package" "$_type" "$_name" "$@"
	_result=$?
	[ -n "$_function" ] || return $_result
	eval "$_function \"\$_name\" \"\$_result\""
}
