"""MMEngine's ``FSDPStrategy`` keys: what each becomes here, or one line saying what to write.

MMEngine's strategy wraps the model in FSDP1 (``FullyShardedDataParallel``) and takes that
wrapper's arguments; FSDP2's ``fully_shard`` has other ones, so most keys have no meaning here.
"""

from __future__ import annotations

from typing import Any

from minirunner.utils import ConfigError, did_you_mean, quoted_list

# key -> what to write instead (MMEngine's keys that FSDP2 has no use for as written).
_INSTEAD = {
    "model_wrapper": "FSDP1 wrapper arguments do not apply to FSDP2: write shard=dict(blocks=['YourBlock']), "
    "mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32') and offload_to_cpu=True instead",
    "state_dict_cfg": "write state_dict='sharded' (MMEngine's 'local') or state_dict='full'",
    "work_dir": "set work_dir at the top level of the config",
    "experiment_name": "set experiment_name at the top level of the config",
    "env_kwargs": "set env_cfg at the top level of the config",
    "log_kwargs": "set log_level (and log_processor) at the top level of the config",
    "auto_scale_lr": "set auto_scale_lr at the top level of the config",
}
_OWN_KEYS = ("shard", "mesh", "mixed_precision", "offload_to_cpu", "activation_checkpointing", "state_dict",
             "skip_init_weights")


def map_mmengine_fsdp_keys(keys: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ours that MMEngine's keys in ``keys`` mean; a :class:`ConfigError`
    for the first that has none.

    ``state_dict_cfg='local'`` / ``'full'`` means ``state_dict='sharded'`` / ``'full'``
    (``skip_init_weights`` has the same name in both).
    """
    mapped = {}
    for key, value in keys.items():
        if key == "state_dict_cfg" and value in ("local", "full"):
            mapped["state_dict"] = "sharded" if value == "local" else "full"
            continue
        if key in _INSTEAD:
            raise ConfigError(f"is not used by FSDPStrategy: {_INSTEAD[key]}", key=key)
        raise ConfigError(
            f"unknown key.{did_you_mean(key, _OWN_KEYS)} FSDPStrategy takes {quoted_list(_OWN_KEYS)}",
            key=key,
        )
    return mapped
