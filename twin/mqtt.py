"""Ingest over MQTT (paho-mqtt): the SensorThings topics and a compact bulk topic.

Topics (each under an optional ``prefix``, e.g. a tenant or a test's unique prefix):

- ``v1.1/Datastreams(ID)/Observations`` — one Observation as SensorThings JSON
  (``{"phenomenonTime": "...", "result": 0.12}``); the datastream comes from the topic;
- ``v1.1/Observations`` — one Observation with ``"Datastream": {"@iot.id": ID}``;
- ``twin/v1/bulk`` — a batch for devices and gateways that buffer:
  ``{"obs": [[ID, time, result], ...]}`` with ``time`` ISO 8601 or epoch seconds.

Delivery: the subscription is QoS 1 on a persistent MQTT 5 session (``clean_start=False``,
a session that never expires and a fixed client id), and messages are acknowledged by hand
(``manual_ack``) only *after* the batch holding them is committed. A message received but
not yet stored when the service dies is redelivered by the broker; storage is idempotent on
(datastream, phenomenon time), so nothing acknowledged is lost and nothing is stored twice.
Malformed messages are dead-lettered and acknowledged: ingest never stops on them.

Keeping up: acknowledging after the commit keeps a batch's messages unacknowledged ("in
flight") while it is written, so the broker must let many be in flight at once. An MQTT 3.1.1
client gets Mosquitto's ``max_inflight_messages`` (20 by default: one batch of 20 messages
per commit, and the rest piles up in the session queue until the broker drops it); as an
MQTT 5 client the subscriber announces its own limit (Receive Maximum,
``MqttSettings.inflight_max``), which Mosquitto honours whatever its configuration. The same
number bounds the queue between paho's network thread and the writer thread: the broker
sends no more than that many unacknowledged messages. The hand-over is a ``deque`` and an
event set only when the writer sleeps: paho's thread, which decodes every message under the
GIL, does no more than an append per message (a ``queue.Queue`` took a lock and notified a
condition per message: an eighth of that thread's time at 5,000 messages/s).

MQTT 3.1.1 on a broker sized for it (``?protocol=3.1.1`` at the end of the URL): paho
decodes an MQTT 5 PUBLISH in about 14 µs (a ``Properties`` object per message) against 2 µs
for 3.1.1, in the thread that holds the GIL. The twin's own broker
(``config/mosquitto.conf``) lets 20,000 messages be in flight to a 3.1.1 client, and
``make run`` subscribes to it that way; against a broker of Mosquitto's defaults, keep 5.

One subscriber per client id: when several processes over one store each run a live twin
(``twin serve --workers N``), they share the deployment's client id, and a **lease** in the
store (:class:`~twin.lease.Lease`, named ``mqtt:<client id>``) decides which one connects;
the others wait as standbys and one of them takes over within ``lease_ttl_s`` (plus one
renewal period) when the holder dies, on the same persistent session, so what the broker
queued or had in flight is delivered to the successor (ADR 0019).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from twin.ingest import MAX_ID, Ingestor
from twin.lease import Lease

logger = logging.getLogger(__name__)

BULK_TOPIC = "twin/v1/bulk"
#: MQTT 5 Session Expiry Interval meaning "never": the broker keeps the session (and queues
#: for it) however long the ingest is away, as an MQTT 3.1.1 persistent session.
SESSION_NEVER_EXPIRES = 0xFFFFFFFF
#: MQTT versions by the name a broker URL gives them (``?protocol=3.1.1``).
_PROTOCOLS = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}
#: Largest message read, bytes (as the HTTP API's ``TWIN_MAX_BODY_BYTES``): a larger one is
#: dead-lettered with its first bytes, unparsed.
MAX_MESSAGE_BYTES = 1024 * 1024
_DATASTREAM_TOPIC = re.compile(r"v1\.1/Datastreams\((\d+)\)/Observations$")


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to subscribe.

    Attributes
    ----------
    url : ``mqtt://host:port``, or ``mqtt://host:port?protocol=3.1.1`` to speak MQTT 3.1.1
        (for a broker that lets many messages be in flight: see the module's docstring)
    prefix : prepended to every topic (``""`` or ending in ``/``)
    client_id : fixed, so the broker keeps the session (and queued messages) across restarts
    batch_max : most messages stored in one transaction
    batch_wait_s : longest wait for a batch to fill
    inflight_max : most messages received and not yet acknowledged (MQTT 5 Receive
        Maximum, at most 65,535); bounds the in-memory queue to the writer
    share_group : subscribe as a member of this shared subscription (``$share/GROUP/...``):
        the broker spreads the messages over the group's ingest processes
    lease_ttl_s : how long the subscription lease lasts unrenewed (renewed every third of
        it); ``None`` connects without a lease
    """

    url: str = "mqtt://127.0.0.1:1883"
    prefix: str = ""
    client_id: str = "citytwin-ingest"
    batch_max: int = 2000
    batch_wait_s: float = 0.02
    inflight_max: int = 20_000
    share_group: str | None = None
    lease_ttl_s: float | None = 5.0

    @property
    def host_port(self) -> tuple[str, int]:
        """The broker's host and port.

        Raises
        ------
        ValueError
            If the URL is not ``mqtt://host[:port]``.
        """
        parsed = urlparse(self.url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ValueError(f"MQTT url(={self.url!r}) must look like mqtt://host:port")
        return parsed.hostname, parsed.port or 1883

    @property
    def protocol(self) -> MQTTProtocolVersion:
        """The MQTT version to speak: 5 (paho's ``MQTTv5``), or 3.1.1 (``MQTTv311``) when the
        URL ends in ``?protocol=3.1.1``.

        Raises
        ------
        ValueError
            If the URL names another protocol or another option.
        """
        query = parse_qs(urlparse(self.url).query, keep_blank_values=True)
        unknown = sorted(set(query) - {"protocol"})
        if unknown:
            raise ValueError(f"MQTT url(={self.url!r}) has unknown option(s) {unknown}")
        version = query.get("protocol", ["5"])[-1]
        if version not in _PROTOCOLS:
            raise ValueError(
                f"MQTT url(={self.url!r}): protocol {version!r} must be one of {list(_PROTOCOLS)}"
            )
        return _PROTOCOLS[version]


def parse_message(
    topic: str, payload: bytes, prefix: str = ""
) -> tuple[list[Any], list[tuple[str, str]]]:
    """Observation bodies of one message, and ``(reason, payload)`` of what cannot be read.

    Parameters
    ----------
    topic : the full topic
    payload : the message body
    prefix : the topic prefix to strip
    """
    if len(payload) > MAX_MESSAGE_BYTES:
        excerpt = payload[:200].decode("utf-8", errors="replace")
        reason = f"message of {len(payload)} bytes on {topic} is over the size limit"
        return [], [(f"{reason} ({MAX_MESSAGE_BYTES} bytes)", excerpt)]
    text = payload.decode("utf-8", errors="replace")
    name = topic[len(prefix) :] if topic.startswith(prefix) else topic
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return [], [(f"malformed JSON on {topic}", text)]
    if name == BULK_TOPIC:
        rows = data.get("obs") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            return [], [(f'bulk message on {topic} has no "obs" list', text)]
        bodies: list[Any] = []
        bad: list[tuple[str, str]] = []
        for row in rows:
            if not isinstance(row, list) or len(row) != 3:
                bad.append(("bulk row must be [datastream, time, result]", str(row)[:200]))
                continue
            bodies.append(
                {"Datastream": {"@iot.id": row[0]}, "phenomenonTime": row[1], "result": row[2]}
            )
        return bodies, bad
    match = _DATASTREAM_TOPIC.match(name)
    if match is not None:
        ident = int(match.group(1))
        if not 1 <= ident <= MAX_ID:
            return [], [(f"datastream {ident} of {topic} is out of range (1 to 2**63 - 1)", text)]
        if not isinstance(data, dict):
            return [], [(f"an observation on {topic} must be a JSON object", text)]
        return [{**data, "Datastream": {"@iot.id": ident}}], []
    if name == "v1.1/Observations":
        return [data], []
    return [], [(f"unknown topic {topic}", text)]


class MqttIngest:
    """A subscriber feeding an :class:`~twin.ingest.Ingestor` from a broker.

    Parameters
    ----------
    ingestor : where observations go
    settings : broker and topics
    lease : connect only while holding this lease (``None``: connect at :meth:`start`)
    """

    def __init__(
        self, ingestor: Ingestor, settings: MqttSettings, lease: Lease | None = None
    ) -> None:
        self.ingestor = ingestor
        self.settings = settings
        self.lease = lease
        self.received = 0
        #: set while connected to the broker and subscribed
        self.connected = threading.Event()
        #: connections made (a standby that took over counts one more)
        self.connections = 0
        #: connections the broker or the network ended (another client on our id, say)
        self.disconnects = 0
        if not 1 <= settings.inflight_max <= 65_535:
            raise ValueError(f"inflight_max(={settings.inflight_max}) must be in 1..65535")
        # never more than inflight_max: the broker sends no more unacknowledged messages
        self._pending: deque[tuple[paho.Client, paho.MQTTMessage] | None] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._leaser: threading.Thread | None = None
        self._client: paho.Client | None = None
        self._address: tuple[str, int] = ("", 0)  # checked at start()
        self._protocol: MQTTProtocolVersion = paho.MQTTv5

    def _new_client(self) -> paho.Client:
        if self._protocol == paho.MQTTv311:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.settings.client_id,
                protocol=paho.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        else:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.settings.client_id,
                protocol=paho.MQTTv5,
                manual_ack=True,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        return client

    @property
    def topics(self) -> list[str]:
        """The subscribed topic filters."""
        p = self.settings.prefix
        share = f"$share/{self.settings.share_group}/" if self.settings.share_group else ""
        return [
            f"{share}{p}v1.1/+/Observations",
            f"{share}{p}v1.1/Observations",
            f"{share}{p}{BULK_TOPIC}",
        ]

    def start(self) -> None:
        """Start storing, and connect (retrying in the background) now or, with a lease,
        whenever this process holds it."""
        self._address = self.settings.host_port  # a bad URL fails here, not in a thread
        self._protocol = self.settings.protocol
        self._stop.clear()
        self._pending.clear()  # what a previous run left unacknowledged is redelivered
        self._worker = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._worker.start()
        if self.lease is None:
            self._connect()
            return
        self._leaser = threading.Thread(target=self._hold, name="mqtt-lease", daemon=True)
        self._leaser.start()

    def stop(self) -> None:
        """Store what was received, then disconnect (and give the lease up)."""
        self._stop.set()
        if self._leaser is not None:
            self._leaser.join(timeout=10)
            self._leaser = None
        self._pending.append(None)
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
        self._disconnect()
        if self.lease is not None:
            try:
                self.lease.release()
            except Exception:  # the lease runs out by itself
                logger.exception("MQTT ingest: releasing the subscription lease failed")

    def _connect(self) -> None:
        host, port = self._address
        client = self._new_client()
        self._client = client
        self.connections += 1
        if self._protocol == paho.MQTTv311:  # the broker's max_inflight_messages applies
            client.connect_async(host, port, keepalive=30)
        else:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
            properties.ReceiveMaximum = self.settings.inflight_max
            client.connect_async(host, port, keepalive=30, clean_start=False, properties=properties)
        client.loop_start()

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        self.connected.clear()  # first: a disconnect of our own is not counted
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def _hold(self) -> None:
        """Take or renew the lease every third of its life; connect while it is held."""
        assert self.lease is not None
        while True:
            try:
                self.lease.acquire()
            except Exception:  # the store is away: the lease is held until it runs out
                logger.exception("MQTT ingest: renewing the subscription lease failed")
            if self.lease.held and self._client is None:
                logger.info("MQTT ingest: holding %s, connecting", self.lease.name)
                self._connect()
            elif not self.lease.held and self._client is not None:
                logger.warning("MQTT ingest: lost %s, disconnecting", self.lease.name)
                self._disconnect()
            if self._stop.wait(self.lease.ttl_s / 3):
                return

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("MQTT connect refused: %s", reason)
            return
        client.subscribe([(topic, 1) for topic in self.topics])
        self.connected.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if self.connected.is_set():
            self.disconnects += 1
        self.connected.clear()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._pending.append((client, message))
        if not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        pending, wake = self._pending, self._wake
        batch_max = self.settings.batch_max
        while True:
            if not pending:
                wake.clear()
                if not pending:  # looked again after clearing: no append goes unseen
                    wake.wait()
            if len(pending) < batch_max:  # let a batch gather (one commit, not many)
                self._stop.wait(self.settings.batch_wait_s)
            batch: list[tuple[paho.Client, paho.MQTTMessage]] = []
            while pending and len(batch) < batch_max:
                item = pending.popleft()
                if item is None:
                    if batch:
                        self._store(batch)
                    return
                batch.append(item)
            if batch:
                self._store(batch)

    def _store(self, batch: list[tuple[paho.Client, paho.MQTTMessage]]) -> None:
        bodies: list[Any] = []
        bad: list[tuple[str, str]] = []
        for _, message in batch:
            try:
                found, rejected = parse_message(
                    message.topic, bytes(message.payload), self.settings.prefix
                )
            except Exception as exc:  # a reader's bug must not hold the messages after it
                logger.exception("MQTT ingest: reading a message on %s failed", message.topic)
                text = bytes(message.payload)[:2000].decode("utf-8", errors="replace")
                found, rejected = [], [(f"cannot be read ({type(exc).__name__}: {exc})", text)]
            bodies.extend(found)
            bad.extend(rejected)
        while True:
            try:
                self.ingestor.ingest(bodies, "mqtt", rejected=bad)
                break
            except Exception:  # the store is down: keep the messages unacknowledged, retry
                # (a message the store refuses while it answers is dead-lettered by ingest)
                logger.exception("MQTT ingest: storing a batch failed; retrying")
                if self._stop.wait(1.0):
                    return
        self.received += len(batch)
        for client, message in batch:
            # on the connection that brought it (after a lost lease the broker redelivers)
            if message.qos > 0 and client is self._client:
                client.ack(message.mid, message.qos)
