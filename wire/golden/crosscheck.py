#!/usr/bin/env python3
"""Cross-check the wire v1 golden vectors with an independent CBOR implementation.

Every ``wire/golden/<name>.hex`` is decoded with Python's ``cbor2`` (not minicbor), its
integer keys are mapped to field names as ``docs/wire-v1.cddl`` defines them, and the result is
compared with ``<name>.json`` beside it. Files named ``batch_*`` are events payloads (Batch),
``status_*`` are status payloads (Status).

Also checked: no bytes after the message, no key the CDDL does not define, every required
field present, every value of the CDDL type and within the v1 limits, and that the bytes are
CBOR's preferred serialization (re-encoding with cbor2 gives the same bytes). When the
optional ``pycddl`` is installed (``python3 -m pip install pycddl``), every vector is also
validated against ``docs/wire-v1.cddl`` itself.

Setup and run, from the repository root:

    python3 -m pip install cbor2
    python3 wire/golden/crosscheck.py

Exit status: 0 when every vector matches, 1 with a diff on stderr otherwise, 2 when cbor2 is
missing or no vector was found.
"""

import io
import json
import pathlib
import re
import sys

try:
    import cbor2
except ImportError:
    sys.exit("crosscheck.py needs cbor2: python3 -m pip install cbor2")

GOLDEN = pathlib.Path(__file__).resolve().parent
CDDL = GOLDEN.parent.parent / "docs" / "wire-v1.cddl"

# The v1 limits (wire/src/limits.rs, docs/wire.md).
MAX_DEVICE_ID = 64
MAX_IFNAME = 15
MAX_SSID = 32
MAX_TEXT = 128
MAX_EVENTS = 1024
MAX_SYNC_IDS = 4096
MAX_INTERFACES = 64
MAX_HOSTNAME = 63

U64 = (0, 2**64 - 1)
U32 = (0, 2**32 - 1)
U8 = (0, 255)
I64 = (-(2**63), 2**63 - 1)
I8 = (-128, 127)


class Mismatch(Exception):
    """A value that breaks the CDDL; the message names its path."""


def expect_int(path, v, bounds):
    if type(v) is not int or not bounds[0] <= v <= bounds[1]:
        raise Mismatch(f"{path}: expected an integer in [{bounds[0]}, {bounds[1]}], got {v!r}")
    return v


def integer(bounds=U64):
    return lambda path, v: expect_int(path, v, bounds)


def boolean(path, v):
    if type(v) is not bool:
        raise Mismatch(f"{path}: expected a bool, got {v!r}")
    return v


def text(max_len):
    def check(path, v):
        if type(v) is not str:
            raise Mismatch(f"{path}: expected a text string, got {v!r}")
        if len(v.encode("utf-8")) > max_len:
            raise Mismatch(f"{path}: {len(v.encode())} bytes, more than {max_len}")
        return v

    return check


def byte_string(path, v, min_len, max_len):
    if type(v) is not bytes:
        raise Mismatch(f"{path}: expected a byte string, got {v!r}")
    if not min_len <= len(v) <= max_len:
        raise Mismatch(f"{path}: {len(v)} bytes, expected {min_len}..{max_len}")
    return v


def bstr_hex(min_len, max_len):
    return lambda path, v: byte_string(path, v, min_len, max_len).hex()


def mac(path, v):
    return ":".join(f"{b:02x}" for b in byte_string(path, v, 6, 6))


def session_id(path, v):
    return f"{expect_int(path, v, U64):016x}"


def offset(path, v):
    if type(v) is int:
        return expect_int(path, v, I64)
    if type(v) is list and len(v) == 2:
        return [expect_int(f"{path}[0]", v[0], I64), expect_int(f"{path}[1]", v[1], I64)]
    raise Mismatch(f"{path}: expected an offset (int or [int, int]), got {v!r}")


def array(item, max_len):
    def check(path, v):
        if type(v) is not list:
            raise Mismatch(f"{path}: expected an array, got {v!r}")
        if len(v) > max_len:
            raise Mismatch(f"{path}: {len(v)} elements, more than {max_len}")
        return [item(f"{path}[{i}]", x) for i, x in enumerate(v)]

    return check


def record(fields):
    """A CBOR map with uint keys; fields maps key -> (name, check, required)."""

    def check(path, v):
        if type(v) is not dict:
            raise Mismatch(f"{path}: expected a map, got {v!r}")
        out = {}
        for key, val in v.items():
            if key not in fields:
                raise Mismatch(f"{path}: key {key!r} is not defined in wire-v1.cddl")
            name, conv, _ = fields[key]
            out[name] = conv(f"{path}.{name}", val)
        for key, (name, _, required) in fields.items():
            if required and name not in out:
                raise Mismatch(f"{path}: required field {name} (key {key}) is missing")
        return out

    return check


REQ, OPT = True, False

START = record({
    0: ("seq", integer(), REQ),
    1: ("at", offset, REQ),
    2: ("id", session_id, REQ),
    3: ("mac", mac, REQ),
    4: ("ifname", text(MAX_IFNAME), REQ),
    5: ("ssid", bstr_hex(0, MAX_SSID), REQ),
    6: ("bssid", mac, REQ),
    7: ("freq_mhz", integer(U32), REQ),
    8: ("age_ms", integer(), REQ),
    9: ("signal_dbm", integer(I8), OPT),
    # Added with issue 20: absent in older agents' starts.
    10: ("hostname", text(MAX_HOSTNAME), OPT),
})

UPDATE = record({
    0: ("seq", integer(), REQ),
    1: ("at", offset, REQ),
    2: ("id", session_id, REQ),
    3: ("rx_bytes", integer(), REQ),
    4: ("tx_bytes", integer(), REQ),
    5: ("rx_packets", integer(), REQ),
    6: ("tx_packets", integer(), REQ),
    7: ("signal_avg_dbm", integer(I8), OPT),
    8: ("inactive_ms", integer(U32), OPT),
    # Added with issue 20: on the update that follows a hostname learnt from DHCP leases.
    9: ("hostname", text(MAX_HOSTNAME), OPT),
})

STOP = record({
    0: ("seq", integer(), REQ),
    1: ("at", offset, REQ),
    2: ("id", session_id, REQ),
    3: ("reason", integer(U8), REQ),
    4: ("age_ms", integer(), REQ),
    5: ("rx_bytes", integer(), REQ),
    6: ("tx_bytes", integer(), REQ),
    7: ("rx_packets", integer(), REQ),
    8: ("tx_packets", integer(), REQ),
    9: ("signal_avg_dbm", integer(I8), OPT),
    10: ("inactive_ms", integer(U32), OPT),
})

SYNC = record({
    0: ("seq", integer(), REQ),
    1: ("at", offset, REQ),
    2: ("ids", array(session_id, MAX_SYNC_IDS), REQ),
})

# Added with issue 20: older readers skip kind 4 as unknown, keeping its seq and at.
FAILED_JOIN = record({
    0: ("seq", integer(), REQ),
    1: ("at", offset, REQ),
    2: ("mac", mac, REQ),
    3: ("ifname", text(MAX_IFNAME), REQ),
    4: ("ssid", bstr_hex(0, MAX_SSID), REQ),
    5: ("bssid", mac, REQ),
    6: ("age_ms", integer(), REQ),
})

EVENT_KINDS = {
    0: ("start", START),
    1: ("update", UPDATE),
    2: ("stop", STOP),
    3: ("sync", SYNC),
    4: ("failed_join", FAILED_JOIN),
}


def event(path, v):
    if type(v) is not list or len(v) != 2:
        raise Mismatch(f"{path}: an event must be the array [kind, body], got {v!r}")
    kind = expect_int(f"{path}.kind", v[0], U32)
    if kind not in EVENT_KINDS:
        return {"kind": kind}  # a newer kind: a v1 reader keeps only the number
    name, body = EVENT_KINDS[kind]
    return {"kind": name, **body(path, v[1])}


BATCH = record({
    0: ("device_id", text(MAX_DEVICE_ID), REQ),
    1: ("boot_id", bstr_hex(16, 16), REQ),
    2: ("agent_epoch", integer(U32), REQ),
    3: ("base_wall_ms", integer(), REQ),
    4: ("base_uptime_ms", integer(), REQ),
    5: ("clock_synced", boolean, REQ),
    6: ("events", array(event, MAX_EVENTS), REQ),
})

INTERFACE = record({
    0: ("ifname", text(MAX_IFNAME), REQ),
    1: ("ifindex", integer(U32), REQ),
    2: ("bssid", mac, REQ),
    3: ("ssid", bstr_hex(0, MAX_SSID), REQ),
    4: ("freq_mhz", integer(U32), REQ),
})


def opt_text(path, v):
    return None if v is None else text(MAX_TEXT)(path, v)


STATUS = record({
    0: ("device_id", text(MAX_DEVICE_ID), REQ),
    1: ("boot_id", bstr_hex(16, 16), REQ),
    2: ("agent_epoch", integer(U32), REQ),
    3: ("online", boolean, REQ),
    4: ("graceful", boolean, REQ),
    5: ("wall_ms", integer(), REQ),
    6: ("uptime_ms", integer(), REQ),
    7: ("clock_synced", boolean, REQ),
    8: ("agent_version", text(MAX_TEXT), REQ),
    9: ("name", opt_text, OPT),
    10: ("organization", opt_text, OPT),
    11: ("group", opt_text, OPT),
    12: ("interfaces", array(INTERFACE, MAX_INTERFACES), REQ),
    13: ("published", integer(), REQ),
    14: ("dropped", integer(), REQ),
    15: ("reconnects", integer(), REQ),
    16: ("outbox_depth", integer(U32), REQ),
    17: ("failed_joins", integer(), REQ),
    18: ("tracker_overflow", integer(), REQ),
    # Added after the first release (issue 18): absent in older agents' statuses, meaning 0.
    19: ("dropped_updates", integer(), OPT),
    20: ("dropped_starts_stops", integer(), OPT),
    21: ("spool_restored", integer(), OPT),
})

MESSAGES = {"batch": BATCH, "status": STATUS}


def diff(path, got, want, out):
    """Appends one line per difference between got (from the .hex) and want (the .json)."""
    if isinstance(got, dict) and isinstance(want, dict):
        for k in list(got) + [k for k in want if k not in got]:
            p = f"{path}.{k}"
            if k not in want:
                out.append(f"  {p}: the .hex has {got[k]!r}, the .json lacks it")
            elif k not in got:
                out.append(f"  {p}: the .json has {want[k]!r}, the .hex lacks it")
            else:
                diff(p, got[k], want[k], out)
    elif isinstance(got, list) and isinstance(want, list):
        for i, (g, w) in enumerate(zip(got, want)):
            diff(f"{path}[{i}]", g, w, out)
        if len(got) != len(want):
            out.append(f"  {path}: the .hex has {len(got)} elements, the .json {len(want)}")
    elif type(got) is not type(want) or got != want:
        out.append(f"  {path}: the .hex says {got!r}, the .json says {want!r}")


def cddl_schemas():
    """{"batch": schema, "status": schema} from the CDDL as pycddl (cddl-rs) can use it, or
    None when pycddl is not installed.

    cddl-rs rejects ranges with a negative bound and mishandles the `* future-key => any`
    wildcard entries, so int8/int64 are widened to int (the range checks above cover them)
    and the wildcards are dropped: golden vectors carry no unknown keys anyway.
    """
    try:
        import pycddl
    except ImportError:
        return None
    text = CDDL.read_text()
    text = re.sub(r"^(int8|int64) = .*$", r"\1 = int", text, flags=re.M)
    text = re.sub(r"^\s*\* future-key => any\n", "", text, flags=re.M)
    # The first rule is the root: one schema per message, so errors name the right fields.
    return {kind: pycddl.Schema(f"root = {kind}\n{text}") for kind in MESSAGES}


def check(hex_path, schemas):
    """Returns a list of problems with one vector (empty when it matches)."""
    kind = hex_path.stem.split("_", 1)[0]
    if kind not in MESSAGES:
        return [f"  file name must start with one of {sorted(MESSAGES)}_"]
    try:
        data = bytes.fromhex("".join(hex_path.read_text().split()))
    except ValueError as e:
        return [f"  not hex: {e}"]
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except Exception as e:  # cbor2 raises several types for malformed input
        return [f"  cbor2 cannot decode it: {e}"]
    problems = []
    if stream.tell() != len(data):
        problems.append(f"  {len(data) - stream.tell()} trailing bytes after the message")
    if cbor2.dumps(item) != data:
        problems.append("  not in CBOR preferred serialization (cbor2 re-encodes it differently)")
    if schemas is not None:
        try:
            schemas[kind].validate_cbor(data)
        except Exception as e:  # pycddl raises ValidationError with the whole report
            problems.append(f"  does not match {CDDL.name}: {str(e).splitlines()[0]}")
    try:
        got = MESSAGES[kind]("$", item)
    except Mismatch as e:
        return problems + [f"  {e}"]
    json_path = hex_path.with_suffix(".json")
    try:
        want = json.loads(json_path.read_text())
    except (OSError, ValueError) as e:
        return problems + [f"  {json_path.name}: {e}"]
    diff("$", got, want, problems)
    return problems


def main():
    vectors = sorted(GOLDEN.glob("*.hex"))
    if not vectors:
        print(f"no .hex files in {GOLDEN}", file=sys.stderr)
        return 2
    schemas = cddl_schemas()
    failed = 0
    for path in vectors:
        problems = check(path, schemas)
        if problems:
            failed += 1
            print(f"MISMATCH {path.name}:", file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
        else:
            print(f"ok       {path.name}")
    if failed:
        print(f"{failed} of {len(vectors)} golden vectors do not match", file=sys.stderr)
        return 1
    cddl = "and docs/wire-v1.cddl" if schemas else "(pycddl not installed: CDDL not checked)"
    print(f"all {len(vectors)} golden vectors match, cbor2 {version('cbor2')} {cddl}")
    return 0


def version(package):
    try:
        from importlib.metadata import version as v

        return v(package)
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
