"""The Runner's hook methods (the Runner inherits them): registering hooks by priority and
calling them."""

from __future__ import annotations

import copy
from typing import Any

from minirunner.hooks import Hook, get_priority
from minirunner.registry import HOOKS, config_key
from minirunner.utils import ConfigError

from .default_hooks import DEFAULT_HOOKS


class HooksMixin:
    """Hook registration and dispatch; uses ``self._hooks``, ``self._hook_names`` and
    ``self._hook_table``, which the Runner creates."""

    def register_hook(self, hook: Hook | dict, priority: int | str | None = None, name: str | None = None) -> None:
        """Add a hook (or its config). Lower priority numbers run first; ties keep registration order."""
        if isinstance(hook, dict):
            hook = dict(hook)
            priority = hook.pop("priority", priority)
            hook = HOOKS.build(hook)
        if not isinstance(hook, Hook):
            raise ConfigError(f"a hook must be a Hook or its config, got {type(hook).__name__}")
        if priority is not None:
            hook.priority = priority
        value = get_priority(hook.priority)
        position = len(self._hooks)
        for index, existing in enumerate(self._hooks):
            if get_priority(existing.priority) > value:
                position = index
                break
        self._hooks.insert(position, hook)
        if name is not None:
            self._hook_names[id(hook)] = name
        self._rebuild_hook_table()

    def _rebuild_hook_table(self) -> None:
        # Resolved once here, so call_hook touches only hooks that implement the event. The
        # lists are refilled in place: the training loops hold the per-iteration ones.
        table = self._hook_table
        for handlers in table.values():
            handlers.clear()
        for hook in self._hooks:
            for event, handler in hook.event_handlers().items():
                table[event].append(handler)

    def iteration_handlers(self, event: str) -> list:
        """What to call, in order, for a per-iteration event such as ``'after_train_iter'``.

        Each item takes the runner and the event's keyword arguments. The training loops
        call them directly: :meth:`call_hook` re-packs its keyword arguments for every hook,
        which costs more than the hooks themselves on a small model. The list stays current
        as hooks are registered. When a subclass overrides :meth:`call_hook`, the one item
        routes through it, so the override still sees every event.
        """
        if type(self).call_hook is not HooksMixin.call_hook:
            return [lambda runner, **kwargs: runner.call_hook(event, **kwargs)]
        return self._hook_table[event]

    def register_hooks(self, default_hooks: dict | None = None, custom_hooks: list | None = None) -> None:
        """Register the default hooks (merged with ``default_hooks`` by name), then the custom ones."""
        self.register_default_hooks(default_hooks)
        self.register_custom_hooks(custom_hooks or [])

    def register_default_hooks(self, hooks: dict | None = None) -> None:
        """Register the default hooks (:data:`DEFAULT_HOOKS`), changed by ``hooks``.

        ``hooks`` maps a default hook's name to a config: one of the same ``type`` (or
        without one) updates that hook's arguments, another type replaces it, None removes
        it, and a new name adds a hook, registered under that name.
        """
        merged = copy.deepcopy(DEFAULT_HOOKS)
        for name, cfg in (hooks or {}).items():
            if cfg is None:
                merged.pop(name, None)
            elif isinstance(cfg, dict) and name in merged and cfg.get("type", merged[name]["type"]) == merged[name]["type"]:
                merged[name].update(cfg)
            else:
                merged[name] = cfg
        for name, cfg in merged.items():
            with config_key(f"default_hooks.{name}"):
                self.register_hook(cfg, name=name)

    def register_custom_hooks(self, hooks: list) -> None:
        """Register each hook (or hook config) of ``hooks``, in order, by priority."""
        for index, cfg in enumerate(hooks):
            with config_key(f"custom_hooks.{index}"):
                self.register_hook(cfg)

    def _hook_state_keys(self) -> list[str]:
        """Where each hook's state goes in a checkpoint: its default-hook name, else its class
        name (``#2``, ``#3`` for repeats), so adding or removing other hooks between the
        interrupted and the resumed run does not move it."""
        keys, seen = [], {}
        for hook in self._hooks:
            name = self._hook_names.get(id(hook))
            if name is None:
                name = type(hook).__name__
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > 1:
                    name = f"{name}#{seen[name]}"
            keys.append(name)
        return keys

    def get_hook(self, name: str) -> Hook | None:
        """The default hook registered under ``name`` (e.g. 'checkpoint'), or None."""
        for hook in self._hooks:
            if self._hook_names.get(id(hook)) == name:
                return hook
        return None

    def call_hook(self, fn_name: str, **kwargs: Any) -> None:
        """Call ``fn_name`` on every hook that implements it, in priority order."""
        for method in self._hook_table.get(fn_name, ()):
            method(self, **kwargs)
