"""`MLflowVisBackend`: scalars, the config and files to an MLflow tracking server or store."""

from __future__ import annotations

import os
import pathlib
import time
import urllib.parse
from typing import Any, Sequence

from minirunner.registry import VISBACKENDS
from minirunner.utils import ConfigError

from .base_vis_backend import config_text, import_optional, plain_number, tracker_step
from .tracker_backend import TrackerBackend
from .tracker_config import config_as_dict, flatten
from .tracker_runs import RunChoice

#: Tags on a run started by resuming a checkpoint of another work dir (a branch): the
#: parent's MLflow run id, and its minirunner key.
PARENT_RUN_TAG = "minirunner.parent_run_id"
PARENT_RUN_KEY_TAG = "minirunner.parent_run_key"
#: Tag naming the key that checkpoints record; a resume finds its run by it.
RUN_KEY_TAG = "minirunner.run_key"
# MLflow error codes that say the request itself is wrong: trying it again cannot help.
_REFUSALS = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_ALREADY_EXISTS", "INVALID_STATE"}
# MLflow's own limits: a param value's length, and params per log_batch call.
_PARAM_VALUE_LIMIT = 6000
_PARAMS_PER_BATCH = 100
# A tracker call must not hang on a server that went away: one short try, no retries (ours,
# at the next log line, replace MLflow's back-off). Set only when the user has not set them.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


@VISBACKENDS.register_module()
class MLflowVisBackend(TrackerBackend):
    """Logs to MLflow: every scalar at the global iteration, the config (flattened params and
    the full text as ``config.py``), and at the end the log folder's files.

    The run opens at the first log line. ``--resume`` in the same work dir continues the run
    the checkpoint names; a resume from another work dir's checkpoint starts a new run tagged
    ``minirunner.parent_run_id``. Calls run on a background thread: a server that goes away
    costs training nothing, is reported once as a warning, and what it missed is sent again
    at later log lines.

    Example:
        >>> visualizer = dict(type='Visualizer', vis_backends=[
        ...     dict(type='LocalVisBackend'),
        ...     dict(type='MLflowVisBackend', exp_name='digits', tracking_uri='http://127.0.0.1:5000')])

    Args:
        save_dir: the run's log folder (the Visualizer passes it).
        exp_name: the MLflow experiment (created when missing); default ``'minirunner'``.
        run_name: the run's name; default the work dir's name.
        tags: tags set on the run.
        params: extra params logged with the config's.
        tracking_uri: the server (``http://host:port``) or store (``sqlite:///path.db``);
            default ``sqlite:///<work_dir>/mlflow.db`` with artifacts in
            ``<work_dir>/mlartifacts`` (never ``./mlruns`` or ``./mlflow.db`` of the current folder).
        artifact_suffix: files of the log folder with these endings are uploaded when the
            run ends.
        tracked_config_keys: log only these top-level config keys as params (default all).
        artifact_location: where a newly created experiment keeps its artifacts (with the
            default store: ``<work_dir>/mlartifacts``).
    """

    def __init__(
        self,
        save_dir: str,
        exp_name: str | None = None,
        run_name: str | None = None,
        tags: dict | None = None,
        params: dict | None = None,
        tracking_uri: str | None = None,
        artifact_suffix: str | Sequence[str] = (".json", ".log", ".py", "yaml"),
        tracked_config_keys: Sequence[str] | None = None,
        artifact_location: str | None = None,
    ) -> None:
        super().__init__(save_dir)
        mlflow = import_optional("mlflow", "MLflowVisBackend", "mlflow")
        for key, value in (("exp_name", exp_name), ("run_name", run_name), ("tracking_uri", tracking_uri),
                           ("artifact_location", artifact_location)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"must be a string or None, got {value!r}", key=key)
        for key, value in (("tags", tags), ("params", params)):
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"must be a dict or None, got {value!r}", key=key)
        if isinstance(artifact_suffix, str):
            artifact_suffix = (artifact_suffix,)
        if not all(isinstance(suffix, str) for suffix in artifact_suffix):
            raise ConfigError(f"must be a string or a list of strings, got {artifact_suffix!r}", key="artifact_suffix")
        if tracked_config_keys is not None and (
            isinstance(tracked_config_keys, str) or not all(isinstance(k, str) for k in tracked_config_keys)
        ):
            raise ConfigError(
                f"must be a list of top-level config keys, got {tracked_config_keys!r}", key="tracked_config_keys"
            )
        for name, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if tracking_uri is not None:
            _check_tracking_uri(mlflow, tracking_uri)
        elif artifact_location is None:
            artifact_location = pathlib.Path(self._work_dir, "mlartifacts").as_uri()
        self.exp_name = exp_name or "minirunner"
        self.run_name = run_name or os.path.basename(self._work_dir)
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.params = dict(params or {})
        self.tracking_uri = tracking_uri or "sqlite:///" + os.path.join(self._work_dir, "mlflow.db")
        self.artifact_suffix = tuple(artifact_suffix)
        self.tracked_config_keys = list(tracked_config_keys) if tracked_config_keys is not None else None
        self.artifact_location = artifact_location
        self._mlflow = mlflow
        self._client: Any = None  # made on the worker: opening an SQLite store takes seconds

    @property
    def experiment(self) -> Any:
        """The ``mlflow.MlflowClient`` of the tracking URI, once the run is open; log to the
        run with ``client.log_metric(backend.run_id, ...)``."""
        super().experiment
        return self._client

    # ------------------------------------------------------------------ logging
    def add_config(self, config: Any, **kwargs: Any) -> None:
        """Log the config when the run opens; unknown ``tracked_config_keys`` are an error now."""
        if self.tracked_config_keys is not None:
            try:
                config_as_dict(config, self.tracked_config_keys)
            except KeyError as error:
                raise ConfigError(error.args[0], key="tracked_config_keys") from None
        super().add_config(config)

    def add_scalars(self, scalar_dict: dict[str, Any], step: int = 0, file_path: str | None = None, **kwargs: Any) -> None:
        """Log the numeric scalars at the global iteration (``step`` without one), in one call."""
        step = tracker_step(step, kwargs)
        stamp = int(time.time() * 1000)
        Metric = self._mlflow.entities.Metric
        metrics = []
        for name, value in scalar_dict.items():
            value = plain_number(value)
            if isinstance(value, (int, float)):
                metrics.append(Metric(name, float(value), stamp, step))
        if metrics:
            self._submit(lambda: self._client.log_batch(self.run_id, metrics=metrics))

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Log an ``H x W x C`` uint8 image under the key ``name`` at ``step``."""
        array = image.detach().cpu().numpy() if hasattr(image, "detach") else image
        self._submit(lambda: self._client.log_image(self.run_id, array, key=name.replace("/", "_"), step=int(step)))

    def add_artifact(self, path: str, **kwargs: Any) -> None:
        """Upload the file ``path`` to the run's artifacts."""
        path = os.path.abspath(path)
        self._submit(lambda: self._client.log_artifact(self.run_id, path))

    # ------------------------------------------------------------------ the worker thread
    def _open_run(self, choice: RunChoice) -> str:
        if self._client is None:
            os.makedirs(self._work_dir, exist_ok=True)
            self._client = self._mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        client = self._client
        experiment = client.get_experiment_by_name(self.exp_name)
        if experiment is None:
            experiment_id = client.create_experiment(self.exp_name, artifact_location=self.artifact_location)
        else:
            experiment_id = experiment.experiment_id
        if choice.continued:
            run_id = self._find_run(experiment_id, choice.run_key)
            if run_id is not None:
                client.update_run(run_id, status="RUNNING")
                self._new_run = False
                return run_id
        tags = {**self.tags, RUN_KEY_TAG: choice.run_key}
        if choice.parent_key is not None:
            tags[PARENT_RUN_KEY_TAG] = choice.parent_key
            # A checkpoint written before the parent's run was created names only its key.
            parent_id = choice.parent_run_id or self._find_run(experiment_id, choice.parent_key)
            if parent_id is not None:
                tags[PARENT_RUN_TAG] = parent_id
        self._new_run = True
        return client.create_run(experiment_id, run_name=self.run_name, tags=tags).info.run_id

    def _is_permanent(self, error: Exception) -> bool:
        # The server refused the request itself (a metric name it rejects, a value too long);
        # an unreachable server raises other codes or exceptions.
        return getattr(error, "error_code", None) in _REFUSALS

    def _find_run(self, experiment_id: str, run_key: str) -> str | None:
        found = self._client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'", max_results=1
        )
        return found[0].info.run_id if found else None

    def _log_config(self, config: Any, new_run: bool) -> None:
        if new_run:  # a param cannot change once logged: a continued run keeps the first values
            values = flatten(config_as_dict(config, self.tracked_config_keys))
            values.update(self.params)
            Param = self._mlflow.entities.Param
            params = [Param(k, str(v)[:_PARAM_VALUE_LIMIT]) for k, v in values.items()]
            for start in range(0, len(params), _PARAMS_PER_BATCH):
                self._client.log_batch(self.run_id, params=params[start : start + _PARAMS_PER_BATCH])
        self._client.log_text(self.run_id, config_text(config), "config.py")

    def _finish_run(self) -> None:
        # Under the log folder's name: each resume writes a log folder of its own.
        log_folder = os.path.basename(os.path.normpath(self._save_dir))
        for folder, _, files in os.walk(self._save_dir):
            for name in sorted(files):
                if name.endswith(self.artifact_suffix):
                    relative = os.path.relpath(folder, self._save_dir)
                    target = log_folder if relative == "." else os.path.join(log_folder, relative)
                    self._client.log_artifact(self.run_id, os.path.join(folder, name), target)
        self._client.set_terminated(self.run_id, status="FINISHED")


def _check_tracking_uri(mlflow: Any, uri: str) -> None:
    """Refuse, before training, a URI whose scheme MLflow has no store for, and a file store
    that MLflow itself refuses."""
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
        raise ConfigError(
            f"{uri!r} is a file store, which MLflow {mlflow.__version__} refuses; use a server "
            "(http://host:port), an SQLite store (sqlite:///path/mlflow.db), or set MLFLOW_ALLOW_FILE_STORE=true",
            key="tracking_uri",
        )
    try:  # MLflow's registry of store schemes (not a public API: skip the check if it moved)
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        known = set(_tracking_store_registry._registry)
    except (ImportError, AttributeError):
        return
    if scheme and scheme not in known:
        raise ConfigError(
            f"MLflow has no tracking store for the scheme {scheme!r} of {uri!r}; known: {', '.join(sorted(known))}",
            key="tracking_uri",
        )
