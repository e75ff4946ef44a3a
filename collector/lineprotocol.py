"""InfluxDB line protocol: a fast encoder for readings and a parser for the lines we write.

Escaping follows the InfluxDB line protocol reference ("Special characters"):
measurement names escape comma and space; tag keys, tag values and field keys escape
comma, equals sign and space; string field values escape double quote and backslash.
Line breaks cannot be represented in names or tags, so they become spaces. InfluxDB 1.x
never unescapes ``\\`` in names and tags, so a backslash at the end of a name or tag, or
right before a comma, equals sign or space, cannot be written at all (the server answers
"invalid tag format"); such a backslash becomes ``/``. Every other backslash is written and
read back as it is (checked against a real server in tests/test_lineprotocol.py).

Numeric values are always written as floats (``value=21.0``), never as integers, so a
device that reports 21 and then 21.5 cannot cause a field-type conflict.

What a server would refuse or silently drop is refused here with ``EncodeError``, before
the line reaches the spool: a measurement starting with ``#`` (the server reads the line
as a comment and answers 204) or with a tab (stripped by the server), a tag key ``time``
(rejected as "invalid tag key") and a timestamp outside InfluxDB's range (1677-09-21 to
2262-04-11).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.errors import EncodeError, ParseError
from collector.model import Reading

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# InfluxDB's valid time range in ns ("time outside range -9223372036854775806 - ...").
_MIN_NS = -9_223_372_036_854_775_806
_MAX_NS = 9_223_372_036_854_775_806

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\ ", "\r": "\\ "})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\ ", "\r": "\\ "})


def _escape(text: str, table: dict[int, str]) -> str:
    if "\\" in text:
        text = _fix_backslashes(text)
    return text.translate(table)


def _fix_backslashes(text: str) -> str:
    out: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < n else ""
            out.append("/" if nxt in ("", ",", "=", " ", "\n", "\r") else "\\")
        else:
            out.append(ch)
    return "".join(out)


def escape_measurement(name: str) -> str:
    if not name:
        raise EncodeError("empty measurement name")
    if name[0] == "#":
        raise EncodeError(f"measurement {name!r} starts with '#' (a comment line)")
    if name[0] == "\t":
        raise EncodeError(f"measurement {name!r} starts with a tab (the server drops it)")
    return _escape(name, _MEASUREMENT)


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key."""
    # The same few names and ids come again in every series of a device: each is escaped
    # once (``str.translate`` takes a microsecond or more per text).
    escaped = _ESCAPED_KEYS.get(text)
    if escaped is None:
        escaped = _escape(text, _KEY)
        if len(_ESCAPED_KEYS) >= _MAX_CACHED:
            _ESCAPED_KEYS.clear()
        _ESCAPED_KEYS[text] = escaped
    return escaped


#: text -> its escaped form as a tag key, tag value or field key
_ESCAPED_KEYS: dict[str, str] = {}


def escape_string_field(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("\n", " ").replace("\r", " ")


def format_float(value: float) -> str:
    """A float as line protocol accepts it; ``repr`` is exact and round-trips."""
    text = repr(float(value))
    if text in ("nan", "inf", "-inf"):
        raise EncodeError(f"value {text} cannot be written")
    return text


def time_ns(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise EncodeError("naive timestamp")
    ns = ((ts - _EPOCH) // _US) * 1000
    if not _MIN_NS <= ns <= _MAX_NS:
        raise EncodeError(
            f"timestamp {ts.isoformat()} is outside InfluxDB's range (1677-09-21 to 2262-04-11)"
        )
    return ns


class Encoder:
    """Encodes readings to lines; caches what repeats a lot: the escaped series prefix,
    the field set of a state (value and label) and the timestamp of a poll."""

    __slots__ = ("_fields", "_last_ns", "_last_suffix", "_last_time", "_prefixes")

    def __init__(self) -> None:
        self._prefixes: dict[tuple[object, ...], str] = {}
        #: (value, label) -> the field set of a labelled reading
        self._fields: dict[tuple[float | str, str], str] = {}
        self._last_time: datetime | None = None
        self._last_ns = 0
        self._last_suffix = ""

    def prefix(self, r: Reading) -> str:
        key = (r.measurement, r.source, r.site, r.device_id, r.device, r.tags)
        hit = self._prefixes.get(key)
        if hit is not None:
            return hit
        prefix = self._build_prefix(r)
        if len(self._prefixes) > _MAX_CACHED:
            self._prefixes.clear()
        self._prefixes[key] = prefix
        return prefix

    @staticmethod
    def _build_prefix(r: Reading) -> str:
        tags = [("device", r.device), ("device_id", r.device_id), ("site", r.site),
                ("source", r.source), *r.tags]
        seen: set[str] = set()
        parts = [escape_measurement(r.measurement)]
        for k, v in sorted(tags):
            if not k:
                raise EncodeError(f"{r.measurement}: empty tag key")
            if k == "time":
                raise EncodeError(f"{r.measurement}: 'time' cannot be a tag key")
            if k in seen:
                raise EncodeError(f"{r.measurement}: tag {k!r} given twice")
            seen.add(k)
            if v:  # InfluxDB has no empty tag values: leave the tag out
                parts.append(f"{escape_key(k)}={escape_key(v)}")
        return ",".join(parts)

    def _time_ns(self, t: datetime) -> int:
        # Readings of one poll share one datetime object: convert it once.
        if t is not self._last_time:
            self._last_ns = time_ns(t)
            self._last_suffix = f" {self._last_ns}"
            self._last_time = t
        return self._last_ns

    def labelled(self, value: float, label: str) -> str:
        """The field set of a reading with a label (`` value=1.0,label="on"``)."""
        key = _field_key(value, label)
        hit = self._fields.get(key)
        if hit is None:
            hit = f' value={value!r},label="{escape_string_field(label)}"'
            if len(self._fields) > _MAX_CACHED:
                self._fields.clear()
            self._fields[key] = hit
        return hit

    def encode(self, r: Reading) -> str:
        ns = self._time_ns(r.time)
        # Reading guarantees a finite float, whose repr is exact and always a float literal.
        if r.label is None:
            return f"{self.prefix(r)} value={r.value!r} {ns}"
        return f"{self.prefix(r)}{self.labelled(r.value, r.label)} {ns}"

    def encode_many(self, readings: Iterable[Reading]) -> list[str]:
        """The hot path of every job: ``encode`` with its lookups inlined."""
        prefixes = self._prefixes
        fields = self._fields
        out: list[str] = []
        append = out.append
        last_time = self._last_time
        suffix = self._last_suffix
        for r in readings:
            measurement, value, t, source, site, device_id, device, tags, label = r
            if t is not last_time:
                self._time_ns(t)
                last_time, suffix = t, self._last_suffix
            prefix = prefixes.get((measurement, source, site, device_id, device, tags))
            if prefix is None:
                prefix = self.prefix(r)
            if label is None:
                append(f"{prefix} value={value!r}{suffix}")
            else:
                # _field_key, inline
                field_set = fields.get((value, label) if value else (repr(value), label))
                if field_set is None:
                    field_set = self.labelled(value, label)
                append(f"{prefix}{field_set}{suffix}")
        return out


def _field_key(value: float, label: str) -> tuple[float | str, str]:
    """The cache key of a labelled field set: 0.0 and -0.0 are equal as floats but are
    written differently, so a zero is keyed by its text."""
    return (value, label) if value else (repr(value), label)


#: Entries of an encoder's caches before they are emptied (a few hundred devices with a
#: few dozen series each stay far below).
_MAX_CACHED = 100_000


_default = Encoder()


def encode(reading: Reading) -> str:
    return _default.encode(reading)


def encode_many(readings: Iterable[Reading]) -> list[str]:
    return _default.encode_many(readings)


# --- parsing (for the embedded store, spool inspection and tests) ---------------------------

FieldValue = float | int | str | bool


@dataclass(frozen=True, slots=True)
class Line:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, FieldValue], ...]
    time_ns: int

    def field(self, key: str) -> FieldValue | None:
        return dict(self.fields).get(key)

    def series_key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.tags)


def _scan(text: str, pos: int, stops: str) -> tuple[str, int]:
    """Read an escaped token up to one of ``stops``; return (unescaped, index of stop)."""
    out: list[str] = []
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\" and pos + 1 < n and text[pos + 1] in ",= ":
            out.append(text[pos + 1])
            pos += 2
            continue
        if ch in stops:
            break
        out.append(ch)
        pos += 1
    return "".join(out), pos


def parse_line(text: str) -> Line:
    """Parse one line as written by :class:`Encoder` (and most other writers)."""
    try:
        measurement, pos = _scan(text, 0, ", ")
        tags: list[tuple[str, str]] = []
        while pos < len(text) and text[pos] == ",":
            key, pos = _scan(text, pos + 1, "=")
            tag_value, pos = _scan(text, pos + 1, ", ")
            tags.append((key, tag_value))
        if pos >= len(text) or text[pos] != " ":
            raise ParseError("no field set", part=text[:80])
        fields: list[tuple[str, FieldValue]] = []
        pos += 1
        while True:
            key, pos = _scan(text, pos, "=")
            pos += 1
            value: FieldValue
            if text[pos] == '"':
                chars: list[str] = []
                pos += 1
                while text[pos] != '"':
                    if text[pos] == "\\" and text[pos + 1] in '"\\':
                        pos += 1
                    chars.append(text[pos])
                    pos += 1
                pos += 1
                value = "".join(chars)
            else:
                end = pos
                while end < len(text) and text[end] not in ", ":
                    end += 1
                raw = text[pos:end]
                pos = end
                if raw.endswith("i"):
                    value = int(raw[:-1])
                elif raw in ("t", "T", "true", "True", "TRUE"):
                    value = True
                elif raw in ("f", "F", "false", "False", "FALSE"):
                    value = False
                else:
                    value = float(raw)
            fields.append((key, value))
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            break
        rest = text[pos:].strip()
        ts = int(rest) if rest else 0
    except (IndexError, ValueError) as err:
        raise ParseError(f"malformed line protocol: {err}", part=text[:80]) from err
    return Line(measurement, tuple(tags), tuple(fields), ts)
