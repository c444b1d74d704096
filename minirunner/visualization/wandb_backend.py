"""`WandbVisBackend`: scalars, the config and files to Weights & Biases."""

from __future__ import annotations

import os
from typing import Any

from minirunner.registry import VISBACKENDS
from minirunner.utils import ConfigError

from .base_vis_backend import import_optional, plain_number, tracker_step
from .tracker_backend import TrackerBackend
from .tracker_config import config_as_dict
from .tracker_runs import RunChoice

#: Config key of a run started by resuming a checkpoint of another work dir (a branch).
PARENT_RUN_KEY = "minirunner_parent_run_id"
# The folders W&B writes besides the run folder; pointed into the log dir unless the user
# set them before the first backend was built.
_DIR_VARIABLES = {
    "WANDB_CACHE_DIR": "cache",
    "WANDB_CONFIG_DIR": "config",
    "WANDB_DATA_DIR": "data",
    "WANDB_ARTIFACT_DIR": "artifacts",
}
_USER_SET: set[str] | None = None


@VISBACKENDS.register_module()
class WandbVisBackend(TrackerBackend):
    """Logs to Weights & Biases: every scalar at the global iteration (W&B's ``step``), the
    config as the run's config, images, and files.

    The run opens at the first log line, in ``<log_dir>/wandb`` (W&B's cache, config, data and
    artifact folders go there too unless ``WANDB_*_DIR`` is set). ``--resume`` in the same work
    dir continues the run the checkpoint names (same id); a resume from another work dir's
    checkpoint starts a new run with ``minirunner_parent_run_id`` in its config. Set
    ``WANDB_MODE=offline`` (or ``init_kwargs=dict(mode='offline')``) to log without network and
    upload later with ``wandb sync``.

    Example:
        >>> visualizer = dict(type='Visualizer', vis_backends=[
        ...     dict(type='LocalVisBackend'),
        ...     dict(type='WandbVisBackend', init_kwargs=dict(project='digits'))])

    Args:
        save_dir: the run's log folder (the Visualizer passes it).
        init_kwargs: keyword arguments for ``wandb.init`` (``project``, ``name``, ``mode``, ...).
        define_metric_cfg: ``{metric: summary}`` (e.g. ``{'accuracy/top1': 'max'}``) or a list
            of ``wandb.define_metric`` keyword dicts.
        commit: passed to ``run.log``. The default None (MMEngine's is True) lets W&B keep a
            step open until a later step arrives, so validation metrics logged at the same
            global iteration as the training scalars join that step; with True, W&B ignores them
            (its steps must increase).
        log_code_name: when set, save the current folder's code as an artifact of this name.
        watch_kwargs: keyword arguments for ``run.watch(model, ...)`` in :meth:`add_graph`.
    """

    def __init__(
        self,
        save_dir: str,
        init_kwargs: dict | None = None,
        define_metric_cfg: dict | list | None = None,
        commit: bool | None = None,
        log_code_name: str | None = None,
        watch_kwargs: dict | None = None,
    ) -> None:
        super().__init__(save_dir)
        self._wandb = import_optional("wandb", "WandbVisBackend", "wandb")
        for key, value in (("init_kwargs", init_kwargs), ("watch_kwargs", watch_kwargs)):
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"must be a dict or None, got {value!r}", key=key)
        if define_metric_cfg is not None and not (
            isinstance(define_metric_cfg, dict)
            or (isinstance(define_metric_cfg, (list, tuple)) and all(isinstance(c, dict) for c in define_metric_cfg))
        ):
            raise ConfigError(
                f"must be a dict {{metric: summary}} or a list of dicts, got {define_metric_cfg!r}",
                key="define_metric_cfg",
            )
        if commit is not None and not isinstance(commit, bool):
            raise ConfigError(f"must be True, False or None, got {commit!r}", key="commit")
        if log_code_name is not None and not isinstance(log_code_name, str):
            raise ConfigError(f"must be a string or None, got {log_code_name!r}", key="log_code_name")
        self.init_kwargs = dict(init_kwargs or {})
        self.define_metric_cfg = define_metric_cfg
        self.commit = commit
        self.log_code_name = log_code_name
        self.watch_kwargs = dict(watch_kwargs or {})
        self._run: Any = None
        _point_dirs_into(os.path.join(save_dir, "wandb"))

    @property
    def experiment(self) -> Any:
        """The ``wandb`` run (``wandb.Run``), once it is open."""
        super().experiment
        return self._run

    # ------------------------------------------------------------------ logging
    def add_scalars(self, scalar_dict: dict[str, Any], step: int = 0, file_path: str | None = None, **kwargs: Any) -> None:
        """Log the scalars at the global iteration (``step`` without one)."""
        step = tracker_step(step, kwargs)
        data = {name: plain_number(value) for name, value in scalar_dict.items()}
        self._submit(lambda: self._run.log(data, step=step, commit=self.commit))

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Log an ``H x W x C`` uint8 image at ``step``."""
        array = image.detach().cpu().numpy() if hasattr(image, "detach") else image
        self._submit(lambda: self._run.log({name: self._wandb.Image(array)}, step=int(step), commit=self.commit))

    def add_graph(self, model: Any, data_batch: Any = None, **kwargs: Any) -> None:
        """Have W&B watch ``model`` (gradients, parameters) with ``watch_kwargs``."""
        self._submit(lambda: self._run.watch(model, **self.watch_kwargs))

    def add_artifact(self, path: str, **kwargs: Any) -> None:
        """Save the file ``path`` with the run."""
        path = os.path.abspath(path)
        self._submit(lambda: self._run.save(path, base_path=os.path.dirname(path), policy="now"))

    # ------------------------------------------------------------------ the worker thread
    def _open_run(self, choice: RunChoice) -> str:
        kwargs = dict(self.init_kwargs)
        kwargs.setdefault("dir", self._save_dir)
        kwargs.setdefault("name", os.path.basename(self._work_dir))
        kwargs.setdefault("id", choice.run_key)  # W&B takes an id chosen by the caller
        if choice.continued:
            kwargs.setdefault("resume", "allow")
        if choice.parent_key is not None:
            kwargs["config"] = {**dict(kwargs.get("config") or {}), PARENT_RUN_KEY: choice.parent_key}
        os.makedirs(kwargs["dir"], exist_ok=True)
        self._run = self._wandb.init(**kwargs)
        self._new_run = not choice.continued
        metrics = self.define_metric_cfg
        if isinstance(metrics, dict):
            for name, summary in metrics.items():
                self._run.define_metric(name, summary=summary)
        elif metrics is not None:
            for cfg in metrics:
                self._run.define_metric(**cfg)
        if self.log_code_name is not None:
            self._run.log_code(name=self.log_code_name)
        return self._run.id

    def _is_permanent(self, error: Exception) -> bool:
        # W&B's client queues and retries network calls itself: a call that fails here was
        # refused (a value it cannot log) and would fail again.
        return self._run is not None

    def _log_config(self, config: Any, new_run: bool) -> None:
        self._run.config.update(config_as_dict(config), allow_val_change=True)

    def _finish_run(self) -> None:
        self._run.finish()


def _point_dirs_into(folder: str) -> None:
    """Point W&B's own folders into ``folder``, except those the user had set."""
    global _USER_SET
    if _USER_SET is None:
        _USER_SET = {name for name in _DIR_VARIABLES if name in os.environ}
    for name, sub in _DIR_VARIABLES.items():
        if name not in _USER_SET:
            os.environ[name] = os.path.join(folder, sub)
