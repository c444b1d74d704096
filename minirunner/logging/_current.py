"""Making an instance built directly (not through ``get_instance``) the current one."""

from __future__ import annotations

from minirunner.utils.manager import _LOCK, ManagerMixin


def make_current(instance: ManagerMixin) -> None:
    """Register ``instance`` under its name, replacing an older one of that name, and make
    it the one ``get_current_instance()`` returns.

    ``ManagerMixin`` only registers what ``get_instance`` creates; the Runner builds its
    message hub directly (a new run must not inherit an earlier run's hub of the same name).
    """
    with _LOCK:
        instances = type(instance)._instance_dict
        instances[instance.instance_name] = instance
        instances.move_to_end(instance.instance_name)
