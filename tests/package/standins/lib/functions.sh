# openwrt-userland stand-in for /lib/functions.sh (base-files): the UCI shell API an init
# script uses (config_load, config_get, config_get_bool, config_foreach, uci_get) and the
# package maintainer helpers opkg's scripts call (default_postinst, default_prerm), behaving as
# shared/OPENWRT.md facts 2 and 3 describe. See tests/package/README.md.

append() {   # append VAR VALUE [SEP]
	local _var="$1" _val="$2" _sep="${3:- }"
	eval "$_var=\"\${$_var:+\${$_var}\${_sep}}\$_val\""
}

# config_load PACKAGE: the package as uci sees it (committed file plus staged changes), as
# CONFIG_<section>_<option> variables; CONFIG_SECTIONS lists the sections.
config_load() {
	local _assign
	CONFIG_SECTIONS=
	_assign=$(/sbin/uci -q show "$1" | awk '
		function q(v) { gsub(/\047/, "\047\\\047\047", v); return "\047" v "\047" }
		function var(s) { gsub(/[^A-Za-z0-9_]/, "_", s); return s }
		{
			eq = index($0, "="); key = substr($0, 1, eq - 1); v = substr($0, eq + 1)
			n = split(key, k, ".")
			if (n == 2) {
				printf "CONFIG_SECTIONS=\"$CONFIG_SECTIONS %s\"; CONFIG_%s_TYPE=%s;\n", k[2], var(k[2]), q(v)
				next
			}
			# values come quoted as uci show prints them; a list is several quoted words
			out = ""; cur = ""; i = 1; L = length(v)
			while (i <= L) {
				c = substr(v, i, 1)
				if (c == "\047") {
					for (j = i + 1; j <= L && substr(v, j, 1) != "\047"; j++) cur = cur substr(v, j, 1)
					i = j + 1
				} else if (c == "\\") {
					cur = cur substr(v, i + 1, 1); i += 2
				} else if (c == " ") {
					out = out (out == "" ? "" : " ") cur; cur = ""; i++
				} else {
					cur = cur c; i++
				}
			}
			out = out (out == "" ? "" : " ") cur
			printf "CONFIG_%s_%s=%s;\n", var(k[2]), var(k[3]), q(out)
		}')
	eval "$_assign"
	return 0
}

config_get() {   # config_get VAR SECTION OPTION [DEFAULT]  (or: config_get SECTION OPTION)
	case "$3" in
		"") eval echo "\"\${CONFIG_${1}_${2}:-\${4}}\"" ;;
		*) eval export -n -- "${1}=\${CONFIG_${2}_${3}:-\${4}}" ;;
	esac
}

get_bool() {
	local _tmp="$1"
	case "$_tmp" in
		1|on|true|yes|enabled) _tmp=1 ;;
		0|off|false|no|disabled) _tmp=0 ;;
		*) _tmp="$2" ;;
	esac
	echo -n "$_tmp"
}

config_get_bool() {   # config_get_bool VAR SECTION OPTION [DEFAULT]
	local _tmp
	config_get _tmp "$2" "$3" "$4"
	_tmp="$(get_bool "$_tmp" "$4")"
	export -n "$1=$_tmp"
}

config_foreach() {   # config_foreach FUNCTION [TYPE] [ARGS...]
	local _function="$1" _type="$2" _section _t
	[ "$#" -ge 1 ] && shift
	[ "$#" -ge 1 ] && shift
	for _section in $CONFIG_SECTIONS; do
		eval "_t=\${CONFIG_$(echo "$_section" | tr -c 'A-Za-z0-9_\n' _)_TYPE}"
		[ -z "$_type" ] || [ "$_t" = "$_type" ] || continue
		eval "$_function \"\$_section\" \"\$@\""
	done
}

uci_get() {   # uci_get PACKAGE[.SECTION[.OPTION]] [DEFAULT]
	local v
	v=$(/sbin/uci -q get "$1") || v=
	echo "${v:-$2}"
}

# opkg runs the package's postinst as `postinst configure`; OpenWrt's default_postinst then
# enables (rc.d links, unless this is an upgrade) and starts every init script the package
# installed (fact 2). With IPKG_INSTROOT set (image building) it only enables.
default_postinst() {
	local root="${IPKG_INSTROOT}"
	local pkgname="$(basename "${1%.*}")"
	local filelist="$root/usr/lib/opkg/info/${pkgname}.list"
	local i
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			/bin/sh "$root/etc/rc.common" "$root$i" enable
		else
			[ "$PKG_UPGRADE" = 1 ] || "$i" enable
			"$i" start
		fi
	done
	return 0
}

# prerm: disables (rc.d links gone, unless upgrading) and stops every init script (fact 3).
default_prerm() {
	local root="${IPKG_INSTROOT}"
	local pkgname="$(basename "${1%.*}")"
	local filelist="$root/usr/lib/opkg/info/${pkgname}.list"
	local i
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			/bin/sh "$root/etc/rc.common" "$root$i" disable
		else
			[ "$PKG_UPGRADE" = 1 ] || "$i" disable
			"$i" stop
		fi
	done
	return 0
}
