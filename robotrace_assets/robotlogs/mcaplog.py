"""MCAP files: read with the ``mcap`` reader, each channel decoded by its encoding's library.

ROS 2 CDR through rosbags' generated deserializers, with types built from the file's own
ros2msg / ros2idl schema (about 3x faster than mcap-ros2-support's dynamic decoder, which stays
the fallback for a schema rosbags cannot parse); ROS 1 through mcap-ros1-support; JSON with
``json``; protobuf with the ``protobuf`` runtime from the FileDescriptorSet the schema carries
(what Foxglove and mcap-protobuf-support writers store). Records are read in file order (half
the reader's cost of a log-time merge) and the collectors sort by log time.

A file must end with the MCAP magic: one that does not was cut off mid-recording and is refused
rather than read partially. A complete file without a summary section (streaming writers may
omit it) is scanned linearly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from mcap.decoder import DecoderFactory
from mcap.reader import make_reader
from mcap.records import Channel, Schema
from mcap_ros1.decoder import DecoderFactory as Ros1DecoderFactory
from mcap_ros2.decoder import DecoderFactory as Ros2DecoderFactory
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from robotrace_assets.robotlogs.errors import RobotLogError

__all__ = ["MAX_CHUNK_BYTES", "MCAP_MAGIC", "Sink", "scan_mcap"]

MCAP_MAGIC = b"\x89MCAP0\r\n"
# Writers chunk at ~1-4 MiB; a chunk far beyond that is refused before it is decompressed.
MAX_CHUNK_BYTES = 256 * 1024 * 1024
# (log_time ns, publish_time ns, decoded message) for one topic.
Sink = Callable[[Any, int, int], None]
Decoder = Callable[[bytes], Any]


class _JsonDecoderFactory(DecoderFactory):
    def decoder_for(self, message_encoding: str, schema: Schema | None) -> Decoder | None:
        return json.loads if message_encoding == "json" else None


class _RosbagsCdrDecoderFactory(DecoderFactory):
    """ROS 2 CDR decoded by rosbags, with the types the MCAP schema defines."""

    def __init__(self) -> None:
        self._store = get_typestore(Stores.EMPTY)

    def decoder_for(self, message_encoding: str, schema: Schema | None) -> Decoder | None:
        if message_encoding != "cdr" or schema is None:
            return None
        if schema.encoding not in ("ros2msg", "ros2idl"):
            return None
        name = schema.name if "/msg/" in schema.name else schema.name.replace("/", "/msg/", 1)
        try:
            text = schema.data.decode()
            if schema.encoding == "ros2msg":
                types = get_types_from_msg(text, name)
            else:
                types = get_types_from_idl(text)
            self._store.register(types)
            if name not in self._store.types:
                return None
        except Exception:  # unparsable or conflicting schema: mcap-ros2-support may manage
            return None
        deserialize = self._store.deserialize_cdr
        return lambda data: deserialize(data, name)


class _ProtobufDecoderFactory(DecoderFactory):
    """Message classes built by the protobuf runtime from the schema's FileDescriptorSet."""

    def __init__(self) -> None:
        self._classes: dict[int, Any] = {}

    def decoder_for(self, message_encoding: str, schema: Schema | None) -> Decoder | None:
        if message_encoding != "protobuf" or schema is None or schema.encoding != "protobuf":
            return None
        cls = self._classes.get(schema.id)
        if cls is None:
            files = descriptor_pb2.FileDescriptorSet.FromString(schema.data)
            pool = descriptor_pool.DescriptorPool()
            pending = list(files.file)
            while pending:  # add dependencies first, whatever order the writer stored
                added = [f for f in pending if all(_known(pool, d) for d in f.dependency)]
                if not added:
                    raise ValueError(f"schema {schema.name}: unresolved protobuf dependencies")
                for proto in added:
                    pool.Add(proto)
                pending = [f for f in pending if f not in added]
            descriptor = pool.FindMessageTypeByName(schema.name)
            cls = self._classes[schema.id] = message_factory.GetMessageClass(descriptor)
        return cls.FromString


def _known(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    try:
        pool.FindFileByName(name)
    except KeyError:
        return False
    return True


def _factories() -> list[DecoderFactory]:
    return [
        _RosbagsCdrDecoderFactory(),
        Ros2DecoderFactory(),
        Ros1DecoderFactory(),
        _JsonDecoderFactory(),
        _ProtobufDecoderFactory(),
    ]


def _check_framing(stream: IO[bytes]) -> None:
    head = stream.read(len(MCAP_MAGIC))
    if head != MCAP_MAGIC:
        raise RobotLogError("not an MCAP file (no MCAP magic at the start)")
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    if size < 2 * len(MCAP_MAGIC):
        raise RobotLogError(f"MCAP truncated: only {size} bytes")
    stream.seek(-len(MCAP_MAGIC), io.SEEK_END)
    if stream.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
        raise RobotLogError(
            f"MCAP truncated: {size} bytes and no footer magic (the recording did not finish)"
        )
    stream.seek(0)


class _Decoders:
    """One decoder per channel, chosen from the factories by the channel's encodings."""

    def __init__(self) -> None:
        self._factories = _factories()
        self._by_channel: dict[int, Decoder] = {}

    def for_channel(self, schema: Schema | None, channel: Channel) -> Decoder:
        decoder = self._by_channel.get(channel.id)
        if decoder is not None:
            return decoder
        try:
            decoder = next(
                (
                    d
                    for f in self._factories
                    if (d := f.decoder_for(channel.message_encoding, schema)) is not None
                ),
                None,
            )
        except Exception as error:  # a hostile schema: the libraries raise many types
            raise RobotLogError(
                f"schema {schema.name if schema else '-'} unusable: {_brief(error)}",
                topic=channel.topic,
            ) from None
        if decoder is None:
            schema_encoding = schema.encoding if schema else "none"
            raise RobotLogError(
                f"no decoder for message encoding {channel.message_encoding!r} "
                f"with schema encoding {schema_encoding!r}",
                topic=channel.topic,
            )
        self._by_channel[channel.id] = decoder
        return decoder


def _brief(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 200 else text[:197] + "..."


def scan_mcap(data: bytes | Path, sinks: Mapping[str, Sink]) -> list[str]:
    """Feed every message of the topics in ``sinks`` to its sink, in log-time order.

    Returns the topics the file has. Raises RobotLogError for a file that is not a complete
    MCAP, a wanted topic the file lacks, or a message its decoder refuses.
    """
    with open(data, "rb") if isinstance(data, Path) else io.BytesIO(data) as stream:
        _check_framing(stream)
        try:
            return _scan(stream, sinks)
        except RobotLogError:
            raise
        except Exception as error:  # the reader's errors on hostile framing vary in type
            raise RobotLogError(f"MCAP unreadable: {_brief(error)}") from None


def _scan(stream: IO[bytes], sinks: Mapping[str, Sink]) -> list[str]:
    reader = make_reader(stream)
    summary = reader.get_summary()
    present: set[str] = set()
    if summary is not None and summary.chunk_indexes:
        biggest = max(c.uncompressed_size for c in summary.chunk_indexes)
        if biggest > MAX_CHUNK_BYTES:  # a decompression bomb, or a writer gone wrong
            raise RobotLogError(
                f"MCAP chunk declares {biggest} bytes uncompressed (limit {MAX_CHUNK_BYTES})"
            )
        present = {c.topic for c in summary.channels.values()}
        missing = sorted(set(sinks) - present)
        if missing:
            raise RobotLogError(
                f"not in the log (topics: {', '.join(sorted(present)) or 'none'})",
                topic=missing[0],
            )
        messages = reader.iter_messages(topics=list(sinks), log_time_order=False)
    else:  # no index: one linear pass over everything
        messages = reader.iter_messages(log_time_order=False)
    decoders = _Decoders()
    counts: dict[str, int] = dict.fromkeys(sinks, 0)
    for schema, channel, message in messages:
        present.add(channel.topic)
        sink = sinks.get(channel.topic)
        if sink is None:
            continue
        decode = decoders.for_channel(schema, channel)
        try:
            decoded = decode(message.data)
        except Exception as error:  # decoders raise struct/index/unicode/... on bad bytes
            raise RobotLogError(
                f"message {counts[channel.topic]} undecodable: {_brief(error)}",
                topic=channel.topic,
            ) from None
        counts[channel.topic] += 1
        sink(decoded, message.log_time, message.publish_time)
    return sorted(present)
