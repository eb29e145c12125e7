"""Pull samples out of decoded messages, whatever library decoded them.

Decoded messages arrive as objects with attributes (mcap-ros2-support, mcap-ros1-support's
genpy classes, rosbags dataclasses, protobuf messages) or as dicts (JSON). A ``Collector`` looks
at the first message of its topic once, resolves where the stamp and the values live, and then
reads every message with one compiled getter (``operator.attrgetter`` for objects): the
per-message Python work is what bounds reading an hour of 100 Hz log.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from robotrace_assets.robotlogs.errors import RobotLogError
from robotrace_assets.robotlogs.topicmap import Stamp, StreamSpec

__all__ = ["Collector", "StreamSamples"]

_NS_PER_S = 1_000_000_000
_MAX_SEC = 9_000_000_000  # int64 nanoseconds overflow a little after 9.2e9 s
_MAX_NS = 2**63 - 1
# Where the usual messages keep their vector: PoseStamped, PoseWithCovarianceStamped,
# TransformStamped, a bare Pose; WrenchStamped, a bare Wrench; JointState.
_DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "pose": ("pose.position", "pose.pose.position", "transform.translation", "position"),
    "wrench": ("wrench.force", "force"),
    "joints": ("position",),
}
# (seconds, nanoseconds) attribute pairs of the time types in the wild: ROS 2 / rosbags,
# ROS 1 genpy, Foxglove JSON, protobuf Timestamp.
_TIME_PAIRS = (("sec", "nanosec"), ("secs", "nsecs"), ("sec", "nsec"), ("seconds", "nanos"))

Getter = Callable[[Any], Any]


def _has(message: Any, path: str) -> bool:
    try:
        _lookup(message, path)
    except (AttributeError, KeyError, TypeError, IndexError):
        return False
    return True


def _lookup(message: Any, path: str) -> Any:
    value = message
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def _getter(message: Any, paths: Sequence[str]) -> Getter:
    """One call returning the tuple of values at ``paths``."""
    if isinstance(message, dict):
        split = [p.split(".") for p in paths]

        def from_dict(msg: Any) -> tuple[Any, ...]:
            out = []
            for parts in split:
                value = msg
                for part in parts:
                    value = value[part]
                out.append(value)
            return tuple(out)

        return from_dict
    if len(paths) == 1:
        single = operator.attrgetter(paths[0])
        return lambda msg: (single(msg),)
    return operator.attrgetter(*paths)


@dataclass
class StreamSamples:
    """What one topic yielded, as arrays."""

    topic: str
    stamp_ns: npt.NDArray[np.int64]  # robot clock: header stamps (or what the map says)
    log_time_ns: npt.NDArray[np.int64]  # recorder's receive time
    values: npt.NDArray[np.float64]  # (n, k)
    names: tuple[str, ...] = ()  # joints: the column order
    stamp_source: str = "header"


@dataclass
class Collector:
    """Accumulates one stream's messages; ``role`` is pose, joints or wrench."""

    role: str
    spec: StreamSpec
    _get: Getter | None = None
    _stamp_kind: str = ""  # "pair" | "int" | "log_time" | "publish_time"
    _names_get: Getter | None = None
    _rows: list[tuple[Any, ...]] = field(default_factory=list)
    _log_times: list[int] = field(default_factory=list)
    _joint_names: list[tuple[str, ...] | None] = field(default_factory=list)
    stamp_source: str = ""

    @property
    def count(self) -> int:
        return len(self._log_times)

    def _fail(self, why: str) -> RobotLogError:
        return RobotLogError(why, topic=self.spec.topic)

    def _resolve_stamp(self, message: Any) -> list[str]:
        """Paths to read for the stamp (empty when the stamp is not in the message)."""
        stamp: Stamp = self.spec.stamp
        if stamp in ("log_time", "publish_time"):
            self._stamp_kind, self.stamp_source = str(stamp), str(stamp)
            return []
        if isinstance(stamp, tuple):
            path = stamp[1]
            if not _has(message, path):
                raise self._fail(f"stamp field {path!r} not in message")
        elif _has(message, "header.stamp"):
            path = "header.stamp"
        else:
            self._stamp_kind = self.stamp_source = "log_time"  # header stamps, else log time
            return []
        value = _lookup(message, path)
        if isinstance(value, int) and not isinstance(value, bool):
            self._stamp_kind, self.stamp_source = "int", path
            return [path]
        for sec, nsec in _TIME_PAIRS:
            if _has(value, sec) and _has(value, nsec):
                self._stamp_kind, self.stamp_source = "pair", path
                return [f"{path}.{sec}", f"{path}.{nsec}"]
        raise self._fail(f"stamp field {path!r} is not a time (sec/nanosec or integer ns)")

    def _resolve(self, message: Any) -> None:
        stamp_paths = self._resolve_stamp(message)
        candidates = (self.spec.field,) if self.spec.field else _DEFAULT_FIELDS[self.role]
        where = next((c for c in candidates if _has(message, c)), None)
        if where is None:
            raise self._fail(f"no {self.role} field ({' or '.join(candidates)}) in message")
        if self.role == "joints":
            value_paths = [where]
            if _has(message, "name"):
                self._names_get = _getter(message, ["name"])
        else:
            value_paths = [f"{where}.{axis}" for axis in ("x", "y", "z")]
            if not all(_has(message, p) for p in value_paths):
                raise self._fail(f"{self.role} field {where!r} has no x, y, z")
        self._get = _getter(message, [*stamp_paths, *value_paths])

    def add(self, message: Any, log_time: int, publish_time: int) -> None:
        if self._get is None:
            self._resolve(message)
            assert self._get is not None
        try:
            row = self._get(message)
            names = self._names_get(message)[0] if self._names_get is not None else None
        except (AttributeError, KeyError, TypeError, IndexError) as error:
            raise self._fail(f"message {self.count}: field missing ({error})") from None
        # MCAP times are uint64: a corrupt record can carry one past int64 nanoseconds.
        if not (0 <= log_time <= _MAX_NS and 0 <= publish_time <= _MAX_NS):
            raise self._fail(f"message {self.count}: record time out of range")
        if self._stamp_kind == "publish_time":
            row = (publish_time, *row)
        self._rows.append(row)
        self._log_times.append(log_time)
        if self.role == "joints":
            # Drivers that leave `name` empty publish positions in a fixed order.
            self._joint_names.append(tuple(names) if names else None)

    def finish(self) -> StreamSamples:
        if not self._rows:
            raise self._fail("topic has no messages in the log")
        log_ns = np.asarray(self._log_times, dtype=np.int64)
        if np.any(np.diff(log_ns) < 0):  # read in file order: put it in log-time order
            order = np.argsort(log_ns, kind="stable")
            log_ns = log_ns[order]
            self._rows = [self._rows[i] for i in order.tolist()]
            if self._joint_names:
                self._joint_names = [self._joint_names[i] for i in order.tolist()]
        if self.role == "joints":
            stamp_ns, values, names = self._finish_joints()
        else:
            stamp_ns, values = self._split(self._rows, 3)
            names = ()
        if stamp_ns is None:
            stamp_ns = log_ns
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
            raise self._fail(f"message {bad}: {self.role} value is NaN or infinite")
        return StreamSamples(
            self.spec.topic, stamp_ns, log_ns, values, names, self.stamp_source or "log_time"
        )

    def _stamp_width(self) -> int:
        return {"pair": 2, "int": 1, "publish_time": 1}.get(self._stamp_kind, 0)

    def _split(
        self, rows: Sequence[tuple[Any, ...]], width: int
    ) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.float64]]:
        """(stamps or None, (n, width) values) from the collected row tuples."""
        stamp_width = self._stamp_width()
        try:
            if self._stamp_kind == "pair":
                # Seconds and nanoseconds are both below 2**53: exact as float64.
                table = np.asarray(rows, dtype=np.float64)
                stamps = self._pair_ns(table[:, 0], table[:, 1])
                return stamps, table[:, 2:].reshape(-1, width)
            if stamp_width == 0:
                return None, np.asarray(rows, dtype=np.float64).reshape(-1, width)
            # Integer nanosecond stamps (~1.8e18) do not survive float64: read them apart.
            stamps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            values = np.asarray([r[1:] for r in rows], dtype=np.float64).reshape(-1, width)
        except (ValueError, TypeError, OverflowError) as error:
            raise self._fail(f"{self.role} values or stamps are not numbers: {error}") from None
        return stamps, values

    def _pair_ns(
        self, sec: npt.NDArray[np.float64], nsec: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]:
        if not (np.isfinite(sec).all() and np.isfinite(nsec).all()):
            raise self._fail("stamps are not finite")
        # Epoch seconds must fit int64 nanoseconds (until 2262); nanoseconds one second.
        bad = np.flatnonzero((sec < 0) | (sec >= _MAX_SEC) | (nsec < 0) | (nsec >= _NS_PER_S))
        if bad.size:
            i = int(bad[0])
            raise self._fail(f"message {i}: stamp {sec[i]:.0f} s {nsec[i]:.0f} ns out of range")
        return sec.astype(np.int64) * _NS_PER_S + nsec.astype(np.int64)

    def _stamps_of(self, rows: Sequence[tuple[Any, ...]]) -> npt.NDArray[np.int64] | None:
        try:
            if self._stamp_kind == "pair":
                pairs = np.asarray([r[:2] for r in rows], dtype=np.float64).reshape(-1, 2)
                return self._pair_ns(pairs[:, 0], pairs[:, 1])
            if self._stamp_width():
                return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        except (ValueError, TypeError, OverflowError) as error:
            raise self._fail(f"stamps are not numbers: {error}") from None
        return None

    def _finish_joints(
        self,
    ) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.float64], tuple[str, ...]]:
        stamp_width = self._stamp_width()
        first_names = self._joint_names[0]
        wanted = self.spec.names or first_names
        positions: list[Any] = [row[stamp_width] for row in self._rows]
        if wanted is not None and first_names is not None:
            positions = self._reorder(positions, wanted)
        try:
            values = np.asarray(positions, dtype=np.float64)
        except (ValueError, TypeError):
            sizes = sorted({len(p) for p in positions})
            raise self._fail(f"joint arrays change length ({sizes})") from None
        if values.ndim != 2 or values.shape[1] == 0:
            raise self._fail("joint positions are empty")
        if self.spec.names is not None and values.shape[1] != len(self.spec.names):
            raise self._fail(
                f"{values.shape[1]} joint positions, topic map names {len(self.spec.names)}"
            )
        stamps = self._stamps_of(self._rows)
        names = tuple(wanted) if wanted else tuple(f"joint_{j}" for j in range(values.shape[1]))
        return stamps, values, names

    def _reorder(self, positions: list[Any], wanted: Sequence[str]) -> list[Any]:
        """Positions in ``wanted`` order; a message may list its joints in any order."""
        orders: dict[tuple[str, ...], list[int]] = {}
        out: list[Any] = []
        for i, (names, values) in enumerate(zip(self._joint_names, positions, strict=True)):
            key = names or ()
            order = orders.get(key)
            if order is None:
                index = {name: j for j, name in enumerate(key)}
                missing = [n for n in wanted if n not in index]
                if missing:
                    raise self._fail(f"message {i}: joint(s) {', '.join(missing)} not in names")
                order = orders[key] = [index[n] for n in wanted]
            if len(values) != len(key):
                raise self._fail(f"message {i}: {len(values)} positions for {len(key)} names")
            out.append([values[j] for j in order])
        return out
