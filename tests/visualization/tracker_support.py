"""Helpers of the tracker tests: a tiny training run, a real MLflow tracking server on
127.0.0.1, and a reader of W&B's offline run files. Imports of tracker packages stay inside
the functions, so this module loads in an environment without them."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any



# ---------------------------------------------------------------------- a tiny training run
def run_cfg(work_dir, backends: list[dict], max_epochs: int = 2, **overrides: Any) -> dict:
    """Two 8-iteration epochs, a line every 2 iterations, validation and a checkpoint after
    each epoch, logging to LocalVisBackend and ``backends``."""
    from runner_support import loader_cfg

    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=loader_cfg(64, 8),
        val_dataloader=loader_cfg(16, 8, shuffle=False),
        val_evaluator=dict(type="Accuracy"),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(logger=dict(type="LoggerHook", interval=2)),
        visualizer=dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend"), *backends]),
    )
    cfg.update(overrides)
    return cfg


def scalars_json(log_dir) -> list[dict]:
    """The records of ``<log_dir>/vis_data/scalars.json``."""
    with open(os.path.join(log_dir, "vis_data", "scalars.json"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# ---------------------------------------------------------------------- MLflow server
class MlflowServer:
    """``mlflow server`` on 127.0.0.1 at a free port, with an SQLite store and artifact root in
    ``folder``; :meth:`stop` and :meth:`start` again keep the port and the store."""

    def __init__(self, folder) -> None:
        self.folder = str(folder)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        executable = os.path.join(os.path.dirname(sys.executable), "mlflow")
        log = open(os.path.join(self.folder, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [executable, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db",
             "--artifacts-destination", os.path.join(self.folder, "artifacts")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.folder,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        with open(os.path.join(self.folder, "server.log"), encoding="utf-8", errors="replace") as handle:
            raise RuntimeError(f"mlflow server did not answer within {timeout} s:\n{handle.read()[-3000:]}")

    def stop(self) -> None:
        """Stop the server and its workers (its own process group), waiting at most ~15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        # Workers of the group may outlive the parent for a moment.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------- W&B offline runs
def wandb_records(run_folder) -> list[Any]:
    """The records of an offline W&B run (``run-<id>.wandb``), as W&B's own protobuf messages.

    W&B 0.31 ships no Python reader for its offline transaction log, and writes
    ``files/config.yaml`` and ``files/wandb-summary.json`` only when it syncs, so the test reads
    the log itself: a ``:W&B`` header, then LevelDB-style 32 KiB blocks of chunks (checksum,
    length, type: 1 whole, 2 first, 3 middle, 4 last), each record a ``wandb_internal_pb2.Record``.
    """
    (name,) = [n for n in os.listdir(run_folder) if n.endswith(".wandb")]
    # W&B's service finishes writing the file a moment after run.finish() returns: wait
    # (bounded) for the run's exit record.
    deadline = time.monotonic() + 30
    while True:
        records = _read_records(os.path.join(run_folder, name))
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _read_records(path: str) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:4] == b":W&B"
    records, pending, position, block = [], b"", 7, 32768
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a chunk header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_history(run_folder) -> list[dict]:
    """``{'_step': N, key: value, ...}`` for each history row of an offline run."""
    rows = []
    for record in wandb_records(run_folder):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
    return rows


def wandb_config(run_folder) -> dict:
    """The run's config as the offline log has it (later updates win)."""
    config: dict = {}
    for record in wandb_records(run_folder):
        kind = record.WhichOneof("record_type")
        # The config given to wandb.init travels in the run record; later updates in their own.
        updates = record.run.config.update if kind == "run" else record.config.update if kind == "config" else []
        for item in updates:
            config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return config


class Gate:
    """A TCP forwarder on 127.0.0.1 in front of ``target_port``. :meth:`shut` makes the server
    unreachable the way a server that went away is (connections reset, new ones refused),
    :meth:`open` brings it back on the same port, in well under a second (restarting a real
    server takes half a minute on a loaded machine)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def shut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the
            # socket listening until that accept() returned.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # shut
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
